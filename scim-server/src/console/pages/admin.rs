//! Admin pages: tenants (list, create), the Graph rules in effect, the configuration in effect
//! with secrets redacted. [`crate::console::admin`] decides who may see them (admins of the
//! server's default tenant) and creates tenants.

use super::CsrfForm;
use crate::console::admin::{self, MAX_TENANT_ID_LEN, MAX_TENANT_NAME_LEN, RulesView, TenantForm};
use crate::console::service::FieldError;
use crate::console::session::Session;
use crate::console::views::{Nav, csrf_field, page, when};
use crate::console::{Console, ConsoleError};
use crate::store::Tenant;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::{Markup, html};
use scim_graph_bridge::rules::{Condition, Grants, Rules};

/// `GET /console/admin`: what the admin pages are.
pub async fn index(
    State(console): State<Console>,
    session: Session,
) -> Result<Markup, ConsoleError> {
    admin::view(&console, &session.operator)?;
    Ok(page(
        &session,
        Nav::Admin,
        "Admin",
        html! {
            p { "The server's administration, for admins of the default tenant. Everything here is read-only but tenant creation." }
            ul {
                li { a href="/console/admin/tenants" { "Tenants" } ": every tenant of this server; create one." }
                li { a href="/console/admin/rules" { "Graph rules" } ": what the Graph bridge grants, rule by rule." }
                li { a href="/console/admin/config" { "Configuration" } ": the configuration in effect, secrets redacted." }
                li { a href="/console/admin/tokens" { "Tokens" } ": this tenant's bearer tokens." }
            }
        },
    ))
}

fn tenant_form(session: &Session, form: &TenantForm, errors: &[FieldError]) -> Markup {
    let error = |field: &str| errors.iter().find(|e| e.field == field);
    html! {
        form method="post" action="/console/admin/tenants" {
            (csrf_field(session))
            div.field {
                label for="id" { "Tenant id" }
                p.hint #id-hint { "Letters, digits, " code { "-" } ", " code { "_" } " or " code { "." } "; it appears in URLs and configuration keys and cannot change." }
                input #id type="text" name="id" value=(form.id) required maxlength=(MAX_TENANT_ID_LEN) autocomplete="off"
                    aria-invalid=[error("id").map(|_| "true")]
                    aria-describedby=(if error("id").is_some() { "id-hint id-error" } else { "id-hint" });
                @if let Some(e) = error("id") { p.error #id-error role="alert" { (e.message) } }
            }
            div.field {
                label for="name" { "Display name" }
                input #name type="text" name="name" value=(form.name) maxlength=(MAX_TENANT_NAME_LEN) autocomplete="off"
                    aria-invalid=[error("name").map(|_| "true")]
                    aria-describedby=[error("name").map(|_| "name-error")];
                @if let Some(e) = error("name") { p.error #name-error role="alert" { (e.message) } }
            }
            div.field.inline {
                input #bulk_upsert type="checkbox" name="bulk_upsert" value="on" checked[form.bulk_upsert.is_some()];
                label for="bulk_upsert" { "HR upsert: a Bulk POST /Users whose externalId exists updates that user" }
            }
            p { button type="submit" { "Create tenant" } }
        }
    }
}

fn tenants_table(tenants: &[Tenant], default: &str) -> Markup {
    html! {
        div.table-wrap { table {
            thead { tr {
                th scope="col" { "Id" } th scope="col" { "Name" } th scope="col" { "HR upsert" }
                th.optional scope="col" { "Created" }
            } }
            tbody { @for t in tenants { tr {
                td { code { (t.id) } @if t.id == default { " (default)" } }
                td { (t.name) }
                td { @if t.bulk_upsert_by_external_id { "on" } @else { "off" } }
                td.optional { (when(t.created)) }
            } } }
        } }
    }
}

async fn tenants_page(
    console: &Console,
    session: &Session,
    form: &TenantForm,
    errors: &[FieldError],
    created: Option<&Tenant>,
) -> Result<Markup, ConsoleError> {
    let tenants = admin::tenants(console, &session.operator).await?;
    Ok(page(
        session,
        Nav::Admin,
        "Tenants",
        html! {
            @if let Some(t) = created {
                p.notice.ok role="status" { "Tenant " code { (t.id) } " is created. It has no credential yet: create one with " code { "scim-server token create --tenant " (t.id) } ", and map console roles for it under " code { "[console.roles." (t.id) "]" } "." }
            }
            p { "Every tenant of this server; each keeps its own users, groups, tokens and change log." }
            (tenants_table(&tenants, console.default_tenant()))
            h2 { "Create a tenant" }
            (tenant_form(session, form, errors))
        },
    ))
}

/// `GET /console/admin/tenants`.
pub async fn tenants(
    State(console): State<Console>,
    session: Session,
) -> Result<Markup, ConsoleError> {
    tenants_page(&console, &session, &TenantForm::default(), &[], None).await
}

/// `POST /console/admin/tenants`.
pub async fn create_tenant(
    State(console): State<Console>,
    posted: CsrfForm<TenantForm>,
) -> Result<Response, ConsoleError> {
    let CsrfForm { session, form } = posted;
    match admin::create_tenant(
        &console,
        &session.operator,
        &form,
        session.request_id.as_deref(),
    )
    .await?
    {
        Ok(tenant) => Ok(tenants_page(
            &console,
            &session,
            &TenantForm::default(),
            &[],
            Some(&tenant),
        )
        .await?
        .into_response()),
        Err(error) => {
            let body = tenants_page(&console, &session, &form, &[error], None).await?;
            Ok((StatusCode::BAD_REQUEST, body).into_response())
        }
    }
}

fn condition(key: &str, c: &Condition) -> Markup {
    let list = |values: &[serde_json::Value]| {
        values
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    html! {
        code { (key) } " "
        @match c {
            Condition::Eq(v) => { "equals " code { (v) } }
            Condition::Ne(v) => { "does not equal " code { (v) } }
            Condition::In(vs) => { "is one of " code { (list(vs)) } }
            Condition::NotIn(vs) => { "is none of " code { (list(vs)) } }
            Condition::StartsWith(s) => { "starts with " code { (serde_json::Value::String(s.clone())) } }
            Condition::Exists(true) => { "has a value" }
            Condition::Exists(false) => { "has no value" }
        }
    }
}

fn grants(rules: &Rules, g: &Grants) -> Markup {
    let c = &rules.catalog;
    html! {
        @if g.groups.is_empty() && g.licenses.is_empty() && g.roles.is_empty() {
            p { "Grants nothing." }
        } @else {
            ul.plain {
                @for name in &g.groups {
                    li { "Group " strong { (name) } @if let Some(id) = c.groups.get(name) { " (" code { (id) } ")" } }
                }
                @for name in &g.licenses {
                    li { "Licence " strong { (name) } @if let Some(l) = c.licenses.get(name) { " (SKU " code { (l.sku_id) } ")" } }
                }
                @for name in &g.roles {
                    li { "Directory role " strong { (name) } @if let Some(r) = c.roles.get(name) { " (" code { (r.role_definition_id) } ", scope " code { (r.directory_scope_id) } ")" } }
                }
            }
        }
    }
}

fn rules_body(rules: &Rules) -> Markup {
    html! {
        p { "A user is matched to a Graph user by SCIM " code { (rules.match_spec.scim) } " = Graph " code { (rules.match_spec.graph) } ". "
            @if rules.create.enabled { "Users missing in Graph are created." } @else { "Users missing in Graph are not created." }
            " A leaver loses every grant below" @match rules.leaver.delete_after_days { Some(d) => { " and is deleted " (d) " days after leaving." }, None => { "; leavers are never deleted." } } }
        h2 #defaults { "Every active user" }
        (grants(rules, &rules.defaults))
        h2 #rules-list { "Rules (" (rules.rules.len()) ")" }
        @if rules.rules.is_empty() { p { "The file has no rule." } }
        @for r in &rules.rules {
            article.rule aria-labelledby=(format!("rule-{}", slug(&r.name))) {
                h3 id=(format!("rule-{}", slug(&r.name))) { (r.name) }
                @if r.when.is_empty() {
                    p { "When: every active user." }
                } @else {
                    p { "When all of:" }
                    ul.plain { @for (key, _, conds) in &r.when { @for c in conds { li { (condition(key, c)) } } } }
                }
                p { "Then:" }
                (grants(rules, &r.grants))
            }
        }
        h2 #catalog { "Catalog" }
        p { "The only Graph objects the bridge changes." }
        div.table-wrap { table {
            thead { tr { th scope="col" { "Kind" } th scope="col" { "Name" } th scope="col" { "Graph id" } } }
            tbody {
                @for (name, id) in &rules.catalog.groups { tr { td { "group" } td { (name) } td { code { (id) } } } }
                @for (name, l) in &rules.catalog.licenses { tr { td { "licence" } td { (name) } td { code { (l.sku_id) } } } }
                @for (name, r) in &rules.catalog.roles { tr { td { "role" } td { (name) } td { code { (r.role_definition_id) } } } }
            }
        } }
    }
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// `GET /console/admin/rules`.
pub async fn rules(
    State(console): State<Console>,
    session: Session,
) -> Result<Markup, ConsoleError> {
    let view = admin::server_view(&console, &session.operator)?;
    Ok(page(
        &session,
        Nav::Admin,
        "Graph rules",
        html! {
            @match &view.rules {
                RulesView::NoBridge => { p.notice { "The Graph bridge is not configured ([graph]): no rule is in effect." } }
                RulesView::NoRulesFile => { p.notice { "[graph] names no rules file (rules = \"…\"): the bridge grants nothing." } }
                RulesView::Unreadable { path, error } => {
                    p.notice.warn role="alert" { "The rules file " code { (path.display()) } " could not be read: " (error) }
                }
                RulesView::Loaded { path, rules } => {
                    p { "Read-only: the rules file " code { (path.display()) } " as the bridge read it at start-up. Change the file and restart the server to change it." }
                    (rules_body(rules))
                }
            }
        },
    ))
}

/// `GET /console/admin/config`.
pub async fn config(
    State(console): State<Console>,
    session: Session,
) -> Result<Markup, ConsoleError> {
    let view = admin::server_view(&console, &session.operator)?;
    Ok(page(
        &session,
        Nav::Admin,
        "Configuration",
        html! {
            p { "The configuration in effect (file, environment overrides and defaults) as TOML. Every secret shows as " code { (admin::REDACTED) } "; a database password as " code { "redacted" } ". Read-only: change the file or the environment and restart the server." }
            pre.config tabindex="0" aria-label="Configuration in effect" { (view.config_toml) }
        },
    ))
}
