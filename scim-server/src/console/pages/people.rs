//! Joiner, mover and leaver forms: new hire, update, termination, rehire. Each form posts to its
//! own URL (a plain form post, no script needed); an invalid form comes back with the person's
//! input and each error next to its field (`aria-describedby`, `role="alert"`), with status 400.
//! [`crate::console::actions`] decides and authorises.

use super::CsrfForm;
use crate::console::actions::{self, Done, HireForm, Outcome, UpdateForm, WhenForm};
use crate::console::roles::{Action, authorize};
use crate::console::service::{self, FieldError, Kind};
use crate::console::session::Session;
use crate::console::views::{Nav, csrf_field, page, when};
use crate::console::{Console, ConsoleError};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::{Markup, html};
use serde_json::Value;

/// One labelled input with its error, if any.
fn input(
    name: &str,
    label: &str,
    value: &str,
    kind: &str,
    hint: Option<&str>,
    errors: &[FieldError],
) -> Markup {
    let error = errors.iter().find(|e| e.field == name);
    let hint_id = format!("{name}-hint");
    let error_id = format!("{name}-error");
    let described = match (hint, error) {
        (Some(_), Some(_)) => Some(format!("{hint_id} {error_id}")),
        (Some(_), None) => Some(hint_id.clone()),
        (None, Some(_)) => Some(error_id.clone()),
        (None, None) => None,
    };
    html! {
        div.field {
            label for=(name) { (label) }
            @if let Some(h) = hint { p.hint id=(hint_id) { (h) } }
            input id=(name) name=(name) type=(kind) value=(value) autocomplete="off"
                aria-invalid=[error.map(|_| "true")] aria-describedby=[described];
            @if let Some(e) = error { p.error id=(error_id) role="alert" { (e.message) } }
        }
    }
}

/// Errors of the form as a whole (not of one field).
fn form_errors(errors: &[FieldError]) -> Markup {
    html! {
        @for e in errors.iter().filter(|e| e.field == "form") {
            p.notice.warn role="alert" { (e.message) }
        }
    }
}

fn hire_form(session: &Session, f: &HireForm, errors: &[FieldError]) -> Markup {
    html! {
        (form_errors(errors))
        form method="post" action="/console/people/new" {
            (csrf_field(session))
            (input("user_name", "User name", &f.user_name, "text", Some("Usually the work e-mail address; must be unique."), errors))
            (input("given_name", "Given name", &f.given_name, "text", None, errors))
            (input("family_name", "Family name", &f.family_name, "text", None, errors))
            (input("email", "Work e-mail", &f.email, "email", None, errors))
            (input("employee_id", "Employee id", &f.employee_id, "text", Some("The HR system's id (externalId); needed for a start date in the future."), errors))
            (input("title", "Job title", &f.title, "text", None, errors))
            (input("department", "Department", &f.department, "text", None, errors))
            (input("manager", "Manager (user name)", &f.manager, "text", None, errors))
            (input("start", "Start date", &f.start, "date", Some("Empty or today: active now. A later date: created inactive now, activated at 00:00 UTC on that date."), errors))
            p { button type="submit" { "Hire" } }
        }
    }
}

/// `GET /console/people/new`.
pub async fn new_hire(session: Session) -> Result<Markup, ConsoleError> {
    authorize(&session.operator, Action::ViewDirectory)?;
    Ok(page(
        &session,
        Nav::People,
        "New hire",
        hire_form(&session, &HireForm::default(), &[]),
    ))
}

fn done_page(session: &Session, title: &str, done: &Done) -> Response {
    page(
        session,
        Nav::People,
        title,
        html! {
            p.notice.ok role="status" { (done.summary) }
            @if let Some((job, at)) = &done.scheduled {
                p { "Scheduled for " (when(*at)) ": " a href=(format!("/console/intake/{job}")) { "intake job " code { (job) } } "." }
            }
            p { a href=(format!("/console/people/{}", done.id)) { "Open the person's page" } }
        },
    )
    .into_response()
}

fn invalid(session: &Session, title: &str, body: Markup) -> Response {
    (
        StatusCode::BAD_REQUEST,
        page(session, Nav::People, title, body),
    )
        .into_response()
}

/// `POST /console/people/new`.
pub async fn hire(
    State(console): State<Console>,
    posted: CsrfForm<HireForm>,
) -> Result<Response, ConsoleError> {
    let CsrfForm { session, form } = posted;
    let outcome: Outcome = actions::hire(
        &console,
        &session.operator,
        &form,
        session.request_id.as_deref(),
    )
    .await?;
    Ok(match outcome {
        Ok(done) => done_page(&session, "Hired", &done),
        Err(errors) => invalid(&session, "New hire", hire_form(&session, &form, &errors)),
    })
}

/// The person's heading for a form page.
async fn who(console: &Console, session: &Session, id: &str) -> Result<Value, ConsoleError> {
    Ok(
        service::detail(console, &session.operator, Kind::User, id, Some(0))
            .await?
            .resource,
    )
}

fn name_of(person: &Value) -> &str {
    person
        .get("userName")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn update_form(session: &Session, id: &str, f: &UpdateForm, errors: &[FieldError]) -> Markup {
    html! {
        (form_errors(errors))
        form method="post" action=(format!("/console/people/{id}/update")) {
            (csrf_field(session))
            (input("title", "Job title", &f.title, "text", None, errors))
            (input("department", "Department", &f.department, "text", None, errors))
            (input("manager", "Manager (user name)", &f.manager, "text", Some("Empty: no manager."), errors))
            (input("employee_id", "Employee id", &f.employee_id, "text", None, errors))
            p {
                button type="submit" { "Save changes" }
                " " a href=(format!("/console/people/{id}")) { "Cancel" }
            }
        }
    }
}

/// `GET /console/people/{id}/update`: the form, filled with the person's current values.
pub async fn edit(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    let person = who(&console, &session, &id).await?;
    let (title, department, manager, employee_id) = actions::current_values(&person);
    let manager = match manager {
        Some(m) => actions::user_name_of(&console, &session.operator.tenant, &m)
            .await?
            .unwrap_or_default(),
        None => String::new(),
    };
    let form = UpdateForm {
        title,
        department,
        manager,
        employee_id,
    };
    Ok(page(
        &session,
        Nav::People,
        &format!("Update {}", name_of(&person)),
        update_form(&session, &id, &form, &[]),
    ))
}

/// `POST /console/people/{id}/update`.
pub async fn update(
    State(console): State<Console>,
    Path(id): Path<String>,
    posted: CsrfForm<UpdateForm>,
) -> Result<Response, ConsoleError> {
    let CsrfForm { session, form } = posted;
    let outcome = actions::update(
        &console,
        &session.operator,
        &id,
        &form,
        session.request_id.as_deref(),
    )
    .await?;
    Ok(match outcome {
        Ok(done) => done_page(&session, "Updated", &done),
        Err(errors) => invalid(
            &session,
            "Update",
            update_form(&session, &id, &form, &errors),
        ),
    })
}

/// Termination or rehire.
#[derive(Debug, Clone, Copy)]
enum Switch {
    Terminate,
    Rehire,
}

impl Switch {
    fn path(self) -> &'static str {
        match self {
            Switch::Terminate => "terminate",
            Switch::Rehire => "rehire",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Switch::Terminate => "Terminate",
            Switch::Rehire => "Rehire",
        }
    }
}

fn when_form(
    session: &Session,
    id: &str,
    switch: Switch,
    f: &WhenForm,
    errors: &[FieldError],
) -> Markup {
    let (explain, hint) = match switch {
        Switch::Terminate => (
            "The account is deactivated (active = false). The Graph bridge then disables the \
             Entra ID account, revokes its sessions and removes the groups, roles and licenses \
             its rules granted.",
            "Empty or today: now. A later date: at 00:00 UTC on that date.",
        ),
        Switch::Rehire => (
            "The account is activated again (active = true); the Graph bridge re-enables it and \
             grants what the rules say.",
            "Empty or today: now. A later date: at 00:00 UTC on that date.",
        ),
    };
    html! {
        p { (explain) }
        (form_errors(errors))
        form method="post" action=(format!("/console/people/{id}/{}", switch.path())) {
            (csrf_field(session))
            (input("effective", "Effective date", &f.effective, "date", Some(hint), errors))
            p {
                button.danger[matches!(switch, Switch::Terminate)] type="submit" { (switch.title()) }
                " " a href=(format!("/console/people/{id}")) { "Cancel" }
            }
        }
    }
}

async fn when_page(
    console: Console,
    session: Session,
    id: String,
    switch: Switch,
) -> Result<Markup, ConsoleError> {
    let person = who(&console, &session, &id).await?;
    Ok(page(
        &session,
        Nav::People,
        &format!("{} {}", switch.title(), name_of(&person)),
        when_form(&session, &id, switch, &WhenForm::default(), &[]),
    ))
}

async fn when_post(
    console: Console,
    id: String,
    posted: CsrfForm<WhenForm>,
    switch: Switch,
) -> Result<Response, ConsoleError> {
    let CsrfForm { session, form } = posted;
    let outcome = actions::set_active(
        &console,
        &session.operator,
        &id,
        matches!(switch, Switch::Rehire),
        &form,
        session.request_id.as_deref(),
    )
    .await?;
    Ok(match outcome {
        Ok(done) => done_page(
            &session,
            match switch {
                Switch::Terminate => "Terminated",
                Switch::Rehire => "Rehired",
            },
            &done,
        ),
        Err(errors) => invalid(
            &session,
            switch.title(),
            when_form(&session, &id, switch, &form, &errors),
        ),
    })
}

/// `GET /console/people/{id}/terminate`.
pub async fn confirm_terminate(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    when_page(console, session, id, Switch::Terminate).await
}

/// `POST /console/people/{id}/terminate`.
pub async fn terminate(
    State(console): State<Console>,
    Path(id): Path<String>,
    posted: CsrfForm<WhenForm>,
) -> Result<Response, ConsoleError> {
    when_post(console, id, posted, Switch::Terminate).await
}

/// `GET /console/people/{id}/rehire`.
pub async fn confirm_rehire(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    when_page(console, session, id, Switch::Rehire).await
}

/// `POST /console/people/{id}/rehire`.
pub async fn rehire(
    State(console): State<Console>,
    Path(id): Path<String>,
    posted: CsrfForm<WhenForm>,
) -> Result<Response, ConsoleError> {
    when_post(console, id, posted, Switch::Rehire).await
}
