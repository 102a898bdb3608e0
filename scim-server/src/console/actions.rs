//! Joiner, mover and leaver actions: new hire, update, termination and rehire, taken by a person
//! in the console.
//!
//! Each action is authorised for its [`Action`] first (a refusal is recorded), then writes
//! through the one write pipeline ([`write::write`]) with a [`Writer`] whose principal is the
//! operator (`console:<subject>`), so the same schemas validate it as a SCIM or HR intake write
//! and its change record names the person who acted. A SCIM error comes back as a
//! [`FieldError`] for the form field it concerns; nothing is half-written (the pipeline writes
//! one resource and its change record in one transaction, or nothing).
//!
//! A date in the future is carried out by the HR intake's queue, as an HR event's effective
//! date is ([`crate::inbound::events`]): a job keyed by the person's employee id
//! (`externalId`), in the `lifecycle` lane, due at 00:00 UTC of that date, with the operator as
//! its principal. A later lifecycle action on the same person (a termination moved to another
//! date, a termination now of a hire not yet started) replaces the pending job: a "now" action
//! on a person with an employee id also queues, in the same lane, a job due now that carries
//! no change (only the employee id), which supersedes the pending ones and writes nothing.

use super::roles::{Action, Operator, Permit};
use super::service::{FieldError, permit};
use super::{Console, ConsoleError};
use crate::auth::{CredentialKind, Principal};
use crate::inbound::queue::{NewJob, NewOperation, ScheduledJob};
use crate::service::RequestCtx;
use crate::service::write::{self, WriteRequest, Writer};
use crate::store::Load;
use scim_core::patch::{PATCH_OP_URN, PatchRequest};
use scim_core::query::{ListQuery, QueryParams};
use scim_core::schema::{ENTERPRISE_USER_URN, ResourceType, USER_RESOURCE};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::{Date, OffsetDateTime, Time};

/// The core User schema's URN.
const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// The new-hire form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct HireForm {
    /// `userName` (required).
    pub user_name: String,
    /// `name.givenName`.
    pub given_name: String,
    /// `name.familyName`.
    pub family_name: String,
    /// The work e-mail address (`emails[type eq "work"]`, primary).
    pub email: String,
    /// The employee id (`externalId`).
    pub employee_id: String,
    /// `title`.
    pub title: String,
    /// The enterprise extension's `department`.
    pub department: String,
    /// The manager's user name (stored as the manager's id).
    pub manager: String,
    /// The start date (`YYYY-MM-DD`, UTC); empty or today: active now.
    pub start: String,
}

/// The update (mover) form: the attributes that change when a person moves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UpdateForm {
    /// `title`.
    pub title: String,
    /// The enterprise extension's `department`.
    pub department: String,
    /// The manager's user name.
    pub manager: String,
    /// The employee id (`externalId`).
    pub employee_id: String,
}

/// The termination and rehire forms: when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct WhenForm {
    /// `YYYY-MM-DD` (UTC); empty or today: now.
    pub effective: String,
}

/// What an action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The person's id.
    pub id: String,
    /// A sentence for the person who acted.
    pub summary: String,
    /// The intake job carrying out the dated part, and when it runs.
    pub scheduled: Option<(String, OffsetDateTime)>,
}

/// An action's result: done, or errors for the form's fields.
pub type Outcome = Result<Done, Vec<FieldError>>;

fn field(field: &'static str, message: impl Into<String>) -> Vec<FieldError> {
    vec![FieldError {
        field,
        message: message.into(),
    }]
}

/// The write capability of the operator a permit names: the principal recorded with each write
/// is `console:<subject>`. Only the principal's id is recorded, so the credential kind is
/// immaterial (the intake's worker does the same).
fn writer(
    console: &Console,
    permit: &Permit,
    request_id: Option<&str>,
) -> Result<Writer, ConsoleError> {
    Ok(operator_ctx(console, permit, request_id).writer()?)
}

/// The request context of the operator a permit names, for the service functions the SCIM
/// API's handlers call (principal `console:<subject>`, never read-only: the permit is the
/// authorisation).
pub(crate) fn operator_ctx(
    console: &Console,
    permit: &Permit,
    request_id: Option<&str>,
) -> RequestCtx {
    let op = permit.operator();
    let settings = &console.app().settings;
    RequestCtx::new(
        Principal::new(
            op.tenant.clone(),
            op.principal(),
            false,
            CredentialKind::StaticToken,
        ),
        request_id.map(str::to_string),
        settings
            .public_url
            .clone()
            .unwrap_or_else(|| settings.base_path.clone()),
    )
}

fn users(console: &Console) -> Result<&ResourceType, ConsoleError> {
    console
        .app()
        .registry
        .resource_type(USER_RESOURCE)
        .ok_or_else(|| ConsoleError::Internal("no User resource type".into()))
}

/// When a dated action takes effect: `None` for now (empty, today or a past date), else 00:00
/// UTC of the date. A date that does not parse is an error for `field_name`.
pub fn effective_at(
    text: &str,
    now: OffsetDateTime,
    field_name: &'static str,
) -> Result<Option<OffsetDateTime>, Vec<FieldError>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(text, &format).map_err(|_| {
        field(
            field_name,
            format!("{text:?} is not a date such as 2026-04-01 (year-month-day)"),
        )
    })?;
    let at = date.with_time(Time::MIDNIGHT).assume_utc();
    Ok((at > now).then_some(at))
}

/// The id of the person whose user name is `user_name` (case-insensitive, as `userName` is).
async fn find_by_user_name(
    console: &Console,
    tenant: &str,
    user_name: &str,
) -> Result<Option<String>, ConsoleError> {
    let app = console.app();
    let rt = users(console)?;
    let params = QueryParams {
        filter: Some(format!(
            "userName eq {}",
            serde_json::to_string(user_name).unwrap_or_default()
        )),
        count: Some("1".into()),
        ..QueryParams::default()
    };
    let query = ListQuery::from_params(&app.registry, rt, &params, app.settings.query_limits())?;
    let page = app.store.list(tenant, rt, &query, Load::default()).await?;
    Ok(page.resources.into_iter().next().map(|r| r.id))
}

/// The manager's id for the `manager` field: `Ok(None)` when empty.
async fn manager_id(
    console: &Console,
    tenant: &str,
    user_name: &str,
) -> Result<Result<Option<String>, Vec<FieldError>>, ConsoleError> {
    let name = user_name.trim();
    if name.is_empty() {
        return Ok(Ok(None));
    }
    Ok(match find_by_user_name(console, tenant, name).await? {
        Some(id) => Ok(Some(id)),
        None => Err(field(
            "manager",
            format!("no person has the user name {name:?}; give the manager's user name"),
        )),
    })
}

/// An error for the employee id field when another person (not `except`) already has it: the
/// HR intake, dated actions and HR events find people by it, so two people sharing one would
/// receive each other's changes.
async fn employee_id_taken(
    console: &Console,
    tenant: &str,
    external: &str,
    except: Option<&str>,
) -> Result<Option<Vec<FieldError>>, ConsoleError> {
    if external.is_empty() {
        return Ok(None);
    }
    let other = console
        .app()
        .resources
        .find_by_external_id(tenant, users(console)?, external)
        .await?
        .filter(|r| Some(r.id.as_str()) != except);
    Ok(other.map(|r| {
        field(
            "employee_id",
            format!(
                "employee id {external:?} already belongs to another person ({}); HR records and \
                 dated actions find people by it",
                r.id
            ),
        )
    }))
}

/// A SCIM error from the pipeline as an error of the form field it names (the field whose
/// attribute the detail mentions), else of the form as a whole (`form`).
fn field_error(e: &scim_core::Error, fields: &[(&'static str, &str)]) -> Vec<FieldError> {
    let detail = e.detail().to_string();
    let lower = detail.to_ascii_lowercase();
    let name = fields
        .iter()
        .find(|(_, attr)| lower.contains(&attr.to_ascii_lowercase()))
        .map_or("form", |(f, _)| f);
    field(name, detail)
}

/// The form fields and the SCIM attribute each writes (for [`field_error`]).
const HIRE_FIELDS: &[(&str, &str)] = &[
    ("user_name", "userName"),
    ("email", "emails"),
    ("employee_id", "externalId"),
    ("given_name", "givenName"),
    ("family_name", "familyName"),
    ("title", "title"),
    ("department", "department"),
    ("manager", "manager"),
];

/// Runs a pipeline write; a client error (4xx) becomes form errors, anything else fails.
async fn run(
    console: &Console,
    writer: &Writer,
    request: WriteRequest,
    fields: &[(&'static str, &str)],
) -> Result<Result<write::Written, Vec<FieldError>>, ConsoleError> {
    match write::write(console.app(), writer, users(console)?, request).await {
        Ok(w) => Ok(Ok(w)),
        Err(e) if e.status() == 404 => Err(e.into()),
        Err(e) if e.status() < 500 => Ok(Err(field_error(&e, fields))),
        Err(e) => Err(e.into()),
    }
}

fn patch(operations: Vec<Value>) -> Result<PatchRequest, ConsoleError> {
    Ok(PatchRequest::parse(
        json!({ "schemas": [PATCH_OP_URN], "Operations": operations }),
        usize::MAX,
    )?)
}

/// Records an allowed action with its outcome (see [`super::service::log_action`]).
async fn record(
    console: &Console,
    permit: &Permit,
    target: &str,
    outcome: &str,
    request_id: Option<&str>,
) -> Result<(), ConsoleError> {
    super::service::log_action(
        console,
        permit.operator(),
        permit.action(),
        target,
        outcome,
        request_id,
    )
    .await
}

/// Queues `data` for the person with employee id `external` in the `lifecycle` lane, due at
/// `at`: an event of source `console`, so that it supersedes the person's pending lifecycle jobs.
async fn schedule(
    console: &Console,
    permit: &Permit,
    external: &str,
    data: Value,
    at: OffsetDateTime,
    request_id: Option<&str>,
) -> Result<String, ConsoleError> {
    let intake = console
        .app()
        .inbound
        .as_deref()
        .ok_or_else(|| ConsoleError::Internal("the HR intake is not running".into()))?;
    let op = permit.operator();
    let kind = permit.action().as_str();
    let job_id = uuid::Uuid::new_v4().to_string();
    let job = ScheduledJob {
        job: NewJob {
            id: job_id.clone(),
            tenant: op.tenant.clone(),
            principal: op.principal(),
            request_id: request_id.map(str::to_string),
            source: format!("console:{kind}"),
            operations: vec![NewOperation {
                bulk_id: None,
                external_id: Some(external.to_string()),
                data,
            }],
        },
        run_after: at,
        subject: external.to_string(),
        lane: "lifecycle",
    };
    let event_id = uuid::Uuid::new_v4().to_string();
    intake
        .queue
        .enqueue_event(
            &op.tenant,
            "console",
            &event_id,
            kind,
            &[job],
            console.app().clock.now(),
        )
        .await?;
    intake.notify();
    Ok(job_id)
}

/// Why a dated action cannot be queued, if it cannot: no intake, or no employee id.
fn cannot_schedule(
    console: &Console,
    external: Option<&str>,
    field_name: &'static str,
) -> Option<Vec<FieldError>> {
    if console.app().inbound.is_none() {
        return Some(field(
            field_name,
            "a later date is carried out by the HR intake's queue, which this server does not \
             run ([inbound] enabled, and a database file or PostgreSQL); leave the date empty to \
             act now",
        ));
    }
    if external.is_none_or(|e| e.trim().is_empty()) {
        return Some(field(
            field_name,
            "a later date is carried out by the HR intake's queue, which finds people by \
             employee id (externalId), and this person has none; set one (Update), or leave the \
             date empty to act now",
        ));
    }
    None
}

/// A new hire: creates the person through the pipeline, active now, or inactive with their
/// activation queued for the start date (the HR intake's pre-hire).
pub async fn hire(
    console: &Console,
    operator: &Operator,
    form: &HireForm,
    request_id: Option<&str>,
) -> Result<Outcome, ConsoleError> {
    let user_name = form.user_name.trim();
    let permit = permit(console, operator, Action::Hire, user_name, request_id).await?;
    if user_name.is_empty() {
        return Ok(Err(field(
            "user_name",
            "a user name is required, such as ada@example.com",
        )));
    }
    let start = match effective_at(&form.start, console.app().clock.now(), "start") {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let external = form.employee_id.trim();
    if start.is_some()
        && let Some(mut e) = cannot_schedule(console, Some(external), "start")
    {
        if external.is_empty() && console.app().inbound.is_some() {
            e = field(
                "employee_id",
                "a start date in the future needs an employee id: the activation on that date \
                 finds the person by it",
            );
        }
        return Ok(Err(e));
    }
    if let Some(e) = employee_id_taken(console, &operator.tenant, external, None).await? {
        return Ok(Err(e));
    }
    let manager = match manager_id(console, &operator.tenant, &form.manager).await? {
        Ok(m) => m,
        Err(e) => return Ok(Err(e)),
    };
    let mut user = Map::new();
    user.insert("schemas".into(), json!([USER_URN, ENTERPRISE_USER_URN]));
    user.insert("userName".into(), json!(user_name));
    let (given, family) = (form.given_name.trim(), form.family_name.trim());
    if !given.is_empty() || !family.is_empty() {
        let mut name = Map::new();
        if !given.is_empty() {
            name.insert("givenName".into(), json!(given));
        }
        if !family.is_empty() {
            name.insert("familyName".into(), json!(family));
        }
        let formatted = format!("{given} {family}").trim().to_string();
        name.insert("formatted".into(), json!(formatted));
        user.insert("name".into(), Value::Object(name));
        user.insert("displayName".into(), json!(formatted));
    }
    let email = form.email.trim();
    if !email.is_empty() {
        if !email.contains('@') {
            return Ok(Err(field(
                "email",
                format!("{email:?} is not an e-mail address such as ada@example.com"),
            )));
        }
        user.insert(
            "emails".into(),
            json!([{ "value": email, "type": "work", "primary": true }]),
        );
    }
    if !external.is_empty() {
        user.insert("externalId".into(), json!(external));
    }
    let title = form.title.trim();
    if !title.is_empty() {
        user.insert("title".into(), json!(title));
    }
    let mut enterprise = Map::new();
    let department = form.department.trim();
    if !department.is_empty() {
        enterprise.insert("department".into(), json!(department));
    }
    if let Some(m) = &manager {
        enterprise.insert("manager".into(), json!({ "value": m }));
    }
    if !enterprise.is_empty() {
        user.insert(ENTERPRISE_USER_URN.into(), Value::Object(enterprise));
    }
    user.insert("active".into(), json!(start.is_none()));
    let writer = writer(console, &permit, request_id)?;
    let written = match run(
        console,
        &writer,
        WriteRequest::Create {
            body: Value::Object(user),
        },
        HIRE_FIELDS,
    )
    .await?
    {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    let id = written.id;
    let (summary, scheduled) = match start {
        None => (format!("{user_name} is hired and active."), None),
        Some(at) => {
            let job = schedule(
                console,
                &permit,
                external,
                json!({ "externalId": external, "active": true }),
                at,
                request_id,
            )
            .await?;
            (
                format!(
                    "{user_name} is created inactive; the account is activated on {} (intake job {job}).",
                    day(at)
                ),
                Some((job, at)),
            )
        }
    };
    let outcome = match &scheduled {
        Some((_, at)) => format!("ok, active from {}", day(*at)),
        None => "ok".to_string(),
    };
    record(console, &permit, &id, &outcome, request_id).await?;
    Ok(Ok(Done {
        id,
        summary,
        scheduled,
    }))
}

fn day(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The person `id` as stored (404 when there is none).
async fn person(
    console: &Console,
    tenant: &str,
    id: &str,
) -> Result<scim_core::resource::Resource, ConsoleError> {
    console
        .app()
        .store
        .get(tenant, users(console)?, id, Load::default())
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("there is no person with id {id}")))
}

/// A person's string attribute (`title`, `externalId`) and enterprise `department` / manager id.
pub fn current_values(resource: &Value) -> (String, String, Option<String>, String) {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let ext = resource.get(ENTERPRISE_USER_URN);
    (
        s(resource.get("title")),
        s(ext.and_then(|e| e.get("department"))),
        ext.and_then(|e| e.get("manager"))
            .and_then(|m| m.get("value"))
            .and_then(Value::as_str)
            .map(str::to_string),
        s(resource.get("externalId")),
    )
}

/// The user name of the person `id`, if there is one.
pub async fn user_name_of(
    console: &Console,
    tenant: &str,
    id: &str,
) -> Result<Option<String>, ConsoleError> {
    Ok(console
        .app()
        .store
        .get(tenant, users(console)?, id, Load::default())
        .await?
        .and_then(|r| {
            r.to_json(&console.app().registry, None)
                .get("userName")
                .and_then(Value::as_str)
                .map(str::to_string)
        }))
}

/// An update (mover): sets, or removes when emptied, the title, department, manager and
/// employee id, in one PATCH. Nothing changed: nothing is written.
pub async fn update(
    console: &Console,
    operator: &Operator,
    id: &str,
    form: &UpdateForm,
    request_id: Option<&str>,
) -> Result<Outcome, ConsoleError> {
    let permit = permit(console, operator, Action::Update, id, request_id).await?;
    let stored = person(console, &operator.tenant, id).await?;
    let (title, department, manager_now, employee_id) =
        current_values(&stored.to_json(&console.app().registry, None));
    let manager = match manager_id(console, &operator.tenant, &form.manager).await? {
        Ok(m) => m,
        Err(e) => return Ok(Err(e)),
    };
    if manager.as_deref() == Some(id) {
        return Ok(Err(field(
            "manager",
            "a person cannot be their own manager",
        )));
    }
    if let Some(e) =
        employee_id_taken(console, &operator.tenant, form.employee_id.trim(), Some(id)).await?
    {
        return Ok(Err(e));
    }
    let dept_path = format!("{ENTERPRISE_USER_URN}:department");
    let mgr_path = format!("{ENTERPRISE_USER_URN}:manager");
    let mut ops = Vec::new();
    // An emptied field removes the attribute; one that was empty already needs no operation
    // (removing an absent attribute is no change).
    let mut set = |path: &str, value: Option<Value>, present: bool| match value {
        Some(v) => ops.push(json!({ "op": "replace", "path": path, "value": v })),
        None if present => ops.push(json!({ "op": "remove", "path": path })),
        None => {}
    };
    let text = |s: &str| {
        let t = s.trim();
        (!t.is_empty()).then(|| json!(t))
    };
    set("title", text(&form.title), !title.is_empty());
    set(&dept_path, text(&form.department), !department.is_empty());
    set(
        &mgr_path,
        manager.map(|m| json!({ "value": m })),
        manager_now.is_some(),
    );
    set(
        "externalId",
        text(&form.employee_id),
        !employee_id.is_empty(),
    );
    if ops.is_empty() {
        record(console, &permit, id, "ok, unchanged", request_id).await?;
        return Ok(Ok(Done {
            id: id.to_string(),
            summary: "Nothing changed: the person already had these values.".to_string(),
            scheduled: None,
        }));
    }
    let writer = writer(console, &permit, request_id)?;
    let request = WriteRequest::Patch {
        id: id.to_string(),
        request: patch(ops)?,
        if_match: None,
    };
    let written = match run(console, &writer, request, HIRE_FIELDS).await? {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    let summary = if written.changed {
        "The person is updated.".to_string()
    } else {
        "Nothing changed: the person already had these values.".to_string()
    };
    record(
        console,
        &permit,
        id,
        if written.changed {
            "ok"
        } else {
            "ok, unchanged"
        },
        request_id,
    )
    .await?;
    Ok(Ok(Done {
        id: id.to_string(),
        summary,
        scheduled: None,
    }))
}

/// A termination (`active` false) or rehire (`active` true), now or at a date.
pub async fn set_active(
    console: &Console,
    operator: &Operator,
    id: &str,
    active: bool,
    form: &WhenForm,
    request_id: Option<&str>,
) -> Result<Outcome, ConsoleError> {
    let action = if active {
        Action::Rehire
    } else {
        Action::Terminate
    };
    let permit = permit(console, operator, action, id, request_id).await?;
    let stored = person(console, &operator.tenant, id).await?;
    let json = stored.to_json(&console.app().registry, None);
    let external = json
        .get("externalId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let at = match effective_at(&form.effective, console.app().clock.now(), "effective") {
        Ok(at) => at,
        Err(e) => return Ok(Err(e)),
    };
    let verb = if active { "rehired" } else { "terminated" };
    let data = |ext: &str| json!({ "externalId": ext, "active": active });
    if let Some(at) = at {
        if let Some(e) = cannot_schedule(console, external.as_deref(), "effective") {
            return Ok(Err(e));
        }
        let ext = external.unwrap_or_default();
        let job = schedule(console, &permit, &ext, data(&ext), at, request_id).await?;
        record(
            console,
            &permit,
            id,
            &format!("scheduled for {}", day(at)),
            request_id,
        )
        .await?;
        return Ok(Ok(Done {
            id: id.to_string(),
            summary: format!(
                "The person will be {verb} on {} at 00:00 UTC (intake job {job}).",
                day(at)
            ),
            scheduled: Some((job, at)),
        }));
    }
    let writer = writer(console, &permit, request_id)?;
    let request = WriteRequest::Patch {
        id: id.to_string(),
        request: patch(vec![
            json!({ "op": "replace", "path": "active", "value": active }),
        ])?,
        if_match: None,
    };
    if let Err(e) = run(console, &writer, request, &[]).await? {
        return Ok(Err(e));
    }
    // A pending dated lifecycle job (a start date, an earlier termination date) must not undo
    // this: a job due now in the same lane supersedes it. It carries no change (a job carrying
    // this one could run after a later action and undo that instead).
    if let Some(ext) = external.as_deref().filter(|e| !e.trim().is_empty())
        && console.app().inbound.is_some()
    {
        schedule(
            console,
            &permit,
            ext,
            json!({ "externalId": ext }),
            console.app().clock.now(),
            request_id,
        )
        .await?;
    }
    record(console, &permit, id, "ok", request_id).await?;
    Ok(Ok(Done {
        id: id.to_string(),
        summary: format!("The person is {verb}."),
        scheduled: None,
    }))
}
