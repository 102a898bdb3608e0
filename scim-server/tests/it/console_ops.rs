//! The console's CSV upload and admin pages through its router (`Router::oneshot`), on SQLite
//! and PostgreSQL:
//!
//! - upload: the form lists the server's mappings; a dry-run preview writes nothing and shows
//!   each row's outcome (a rejected row with its row and column); a file with a rejected row is
//!   refused (400, row and column named) and queues nothing; a good file becomes one intake job,
//!   whose progress region polls until the worker is done and whose report downloads as the
//!   CSV the command writes; a row the write refuses is `failed` in the report; a file over
//!   `inbound.max_import_bytes` is 413; no file, an unknown mapping or a missing CSRF token are
//!   refused and queue nothing;
//! - admin: the configuration page shows none of the secrets a configuration holds (token,
//!   database password, OAuth client secret, Graph client secret, OIDC client secret, webhook,
//!   HR source and callback secrets); the rules page shows each rule's conditions and grants;
//!   tenants are listed and created (bad and duplicate ids refused next to the field); every
//!   admin page is 403 for the other roles and for an admin of another tenant.
//!
//! A viewer's 403 for each new action is also in `console_actions.rs`'s per-action table.

use crate::console::{Fixture, csrf_of, fixture_with_intake, location};
use crate::support::TestDb;
use axum::body::Body;
use http::{Request, StatusCode, header};
use scim_server::config::Config;
use scim_server::console::admin::ServerView;
use scim_server::console::roles::{Operator, Role};
use scim_server::inbound::mapping::Mapping;
use scim_server::inbound::queue::status;
use scim_server::inbound::worker::Worker;
use scim_server::inbound::{InboundConfig, Intake};
use std::collections::BTreeMap;
use std::sync::Arc;

const MAPPING: &str = r#"
[attributes]
externalId = { from = "Employee ID" }
userName = { from = "Email", transform = ["trim", "lowercase"] }
displayName = { concat = ["First", "Last"] }
active = { from = "Active" }
"#;

const GOOD: &str = "Employee ID,First,Last,Email,Active\n\
E1,Ada,Lovelace,ada@corp.example,true\n\
E2,Alan,Turing,alan@corp.example,true\n\
E3,Grace,Hopper,grace@corp.example,true\n";

/// Row 3 says `maybe` where a boolean belongs.
const BAD: &str = "Employee ID,First,Last,Email,Active\n\
E1,Ada,Lovelace,ada@corp.example,true\n\
E2,Alan,Turing,alan@corp.example,maybe\n";

/// A console with the HR intake (mapping `hr`), its queue on `db`, and `inbound` settings.
async fn fixture(db: &TestDb, inbound: InboundConfig) -> (Fixture, Arc<Intake>) {
    let mappings = BTreeMap::from([("hr".to_string(), Mapping::parse(MAPPING).unwrap())]);
    fixture_with_intake(db, |queue, clock| {
        Intake::new(queue, inbound)
            .with_clock(clock)
            .with_mappings(mappings)
    })
    .await
}

const BOUNDARY: &str = "----scim-console-test-7MA4YWxkTrZu0gW";

/// A `multipart/form-data` body: text fields in order, then the file (when given) as `file`.
pub(crate) fn multipart(fields: &[(&str, &str)], file: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some(bytes) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"staff.csv\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub(crate) async fn post_multipart(
    f: &Fixture,
    path: &str,
    cookie: &str,
    body: Vec<u8>,
    htmx: bool,
) -> crate::console::Reply {
    let mut req = Request::post(path)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header(header::COOKIE, cookie);
    if htmx {
        req = req.header("hx-request", "true");
    }
    f.send(req.body(Body::from(body)).unwrap()).await
}

/// Posts the upload form (`preview` or run) with `csv` and mapping `hr`.
async fn upload(
    f: &Fixture,
    cookie: &str,
    csrf: &str,
    preview: bool,
    csv: &str,
) -> crate::console::Reply {
    let path = if preview {
        "/console/upload/preview"
    } else {
        "/console/upload"
    };
    let body = multipart(
        &[("csrf", csrf), ("mapping", "hr"), ("delimiter", "")],
        Some(csv.as_bytes()),
    );
    post_multipart(f, path, cookie, body, false).await
}

async fn user_count(f: &Fixture) -> u64 {
    let rt = f.app.registry.resource_type("User").unwrap();
    let query = scim_core::query::ListQuery {
        count: 0,
        ..scim_core::query::ListQuery::from_params(
            &f.app.registry,
            rt,
            &Default::default(),
            f.app.settings.query_limits(),
        )
        .unwrap()
    };
    f.app
        .store
        .list("default", rt, &query, Default::default())
        .await
        .unwrap()
        .total
}

async fn jobs(intake: &Intake) -> usize {
    let mut n = 0;
    for s in [
        status::QUEUED,
        status::RUNNING,
        status::COMPLETED,
        status::COMPLETED_WITH_ERRORS,
        status::DEAD,
    ] {
        n += intake.queue.jobs_in(s, None, 100).await.unwrap().len();
    }
    n
}

async fn preview_run_progress_and_report(db: Arc<TestDb>) {
    let (f, intake) = fixture(&db, InboundConfig::default()).await;
    let (cookie, csrf) = f.sign_in(Role::Operator).await;
    let form = f.get("/console/upload", Some(&cookie)).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<option value=\"hr\""), "{}", form.body);
    assert!(form.body.contains("enctype=\"multipart/form-data\""));
    assert!(form.body.contains("<label for=\"file\">CSV file</label>"));

    // A dry run: each row's outcome, nothing written or queued.
    let preview = upload(&f, &cookie, &csrf, true, GOOD).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(
        preview
            .body
            .contains("Dry run of 3 rows: nothing was written."),
        "{}",
        preview.body
    );
    assert_eq!(preview.body.matches("<td>created</td>").count(), 3);
    assert!(preview.body.contains("Every row passes."));
    assert_eq!(user_count(&f).await, 0);
    assert_eq!(jobs(&intake).await, 0);

    // A bad row: the preview names its row and column; the run refuses the file.
    let bad = upload(&f, &cookie, &csrf, true, BAD).await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.body.contains("<td>rejected</td>"), "{}", bad.body);
    assert!(bad.body.contains("<td>3</td>") && bad.body.contains("<code>Active</code>"));
    let refused = upload(&f, &cookie, &csrf, false, BAD).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("row 3, column &quot;Active&quot;")
            && refused.body.contains("nothing was queued"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("id=\"file-error\""));
    assert_eq!(jobs(&intake).await, 0, "a refused file queues nothing");

    // The run: one job; its progress polls until the worker is done.
    let queued = upload(&f, &cookie, &csrf, false, GOOD).await;
    assert_eq!(queued.status, StatusCode::SEE_OTHER, "{}", queued.body);
    let page_path = location(&queued).to_string();
    let job = page_path
        .strip_prefix("/console/upload/jobs/")
        .unwrap()
        .to_string();
    let page = f.get(&page_path, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Download the report (CSV)"));
    let progress_path = format!("/console/upload/jobs/{job}/progress");
    let waiting = f.get(&progress_path, Some(&cookie)).await;
    assert_eq!(waiting.status, StatusCode::OK);
    assert!(
        waiting
            .body
            .contains("Waiting for the intake worker: 0 of 3 rows done."),
        "{}",
        waiting.body
    );
    assert!(waiting.body.contains("hx-trigger=\"every 1s\""));
    assert!(!waiting.body.contains("<html"), "a fragment, not a page");

    f.clock.advance(time::Duration::seconds(2));
    Worker::new(f.app.clone(), intake.clone())
        .run_until_idle(10)
        .await
        .unwrap();
    let done = f.get(&progress_path, Some(&cookie)).await;
    assert!(done.body.contains("Done: 3 of 3 rows."), "{}", done.body);
    assert!(
        done.body.contains("1.5 rows/s"),
        "3 rows in 2 s: {}",
        done.body
    );
    assert!(!done.body.contains("hx-trigger"), "polling stops when done");
    assert_eq!(user_count(&f).await, 3);

    let report = f
        .get(
            &format!("/console/upload/jobs/{job}/report.csv"),
            Some(&cookie),
        )
        .await;
    assert_eq!(report.status, StatusCode::OK);
    assert_eq!(
        report.headers[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    assert!(
        report.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"upload-"),
    );
    assert_eq!(
        report.body,
        "row,employeeId,outcome,column,error\n2,E1,created,,\n3,E2,created,,\n4,E3,created,,\n"
    );

    // A row the write refuses (a user name another person has) fails alone, in the report.
    let clash = "Employee ID,First,Last,Email,Active\n\
E4,Ada,Again,ADA@corp.example,true\n\
E1,Ada,Lovelace,ada@corp.example,true\n";
    let preview = upload(&f, &cookie, &csrf, true, clash).await;
    assert!(
        preview.body.contains("<td>failed</td>") && preview.body.contains("<td>unchanged</td>")
    );
    let queued = upload(&f, &cookie, &csrf, false, clash).await;
    let job2 = location(&queued)
        .strip_prefix("/console/upload/jobs/")
        .unwrap()
        .to_string();
    Worker::new(f.app.clone(), intake.clone())
        .run_until_idle(10)
        .await
        .unwrap();
    let done = f
        .get(
            &format!("/console/upload/jobs/{job2}/progress"),
            Some(&cookie),
        )
        .await;
    assert!(
        done.body
            .contains("Done with errors: 2 of 2 rows, 1 failed."),
        "{}",
        done.body
    );
    let report = f
        .get(
            &format!("/console/upload/jobs/{job2}/report.csv"),
            Some(&cookie),
        )
        .await;
    let lines: Vec<&str> = report.body.lines().collect();
    assert_eq!(lines.len(), 3, "{}", report.body);
    assert!(
        lines[1].starts_with("2,E4,failed,,\"409 userName \"\"ada@corp.example\"\""),
        "{}",
        report.body
    );
    assert_eq!(lines[2], "3,E1,unchanged,,");

    // Written as the operator; the upload and the previews are in the action log.
    let actions: Vec<(String, String)> = f
        .console
        .db()
        .recent_actions("default", 100)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|a| (a.action, a.outcome))
        .collect();
    let ok = |a: &str| (a.to_string(), "ok".to_string());
    assert_eq!(
        actions,
        vec![
            ok("preview_import"),
            ok("preview_import"),
            ok("run_import"),
            ok("preview_import"),
            ok("run_import"),
        ]
    );
    let job_view = intake.queue.job("default", &job).await.unwrap().unwrap();
    assert_eq!(job_view.source, "csv");

    // Another tenant's job, or a job that is not an upload, is not found.
    assert_eq!(
        f.get("/console/upload/jobs/nope/report.csv", Some(&cookie))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn bad_uploads_are_refused_and_queue_nothing(db: Arc<TestDb>) {
    let (f, intake) = fixture(
        &db,
        InboundConfig {
            max_import_bytes: 200,
            ..InboundConfig::default()
        },
    )
    .await;
    let (cookie, csrf) = f.sign_in(Role::Operator).await;
    let big = format!("{GOOD}{}", "E9,Big,File,big@corp.example,true\n".repeat(10));
    for (what, body) in [
        (
            "over the file limit",
            multipart(&[("csrf", &csrf), ("mapping", "hr")], Some(big.as_bytes())),
        ),
        (
            "over the whole body's limit",
            multipart(
                &[("csrf", &csrf), ("mapping", "hr")],
                Some(big.repeat(400).as_bytes()),
            ),
        ),
    ] {
        for path in ["/console/upload/preview", "/console/upload"] {
            let r = post_multipart(&f, path, &cookie, body.clone(), false).await;
            assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{what} {path}");
            assert!(
                r.body
                    .contains("larger than 200 bytes (the server's `inbound.max_import_bytes`)")
                    || r.body.contains(
                        "larger than 200 bytes (the server&#39;s `inbound.max_import_bytes`)"
                    ),
                "{what}: {}",
                r.body
            );
        }
    }
    // A file just over the limit: the form again, the error next to the file.
    let r = post_multipart(
        &f,
        "/console/upload",
        &cookie,
        multipart(&[("csrf", &csrf), ("mapping", "hr")], Some(big.as_bytes())),
        false,
    )
    .await;
    assert!(r.body.contains("id=\"file-error\""), "{}", r.body);
    // With htmx the same error comes in the preview region (200: htmx swaps only a success).
    let r = post_multipart(
        &f,
        "/console/upload/preview",
        &cookie,
        multipart(&[("csrf", &csrf), ("mapping", "hr")], Some(big.as_bytes())),
        true,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Not uploaded") && r.body.contains("inbound.max_import_bytes"));
    // A body whose file comes before any CSRF token is refused as it stands.
    let r = post_multipart(
        &f,
        "/console/upload",
        &cookie,
        multipart(&[], Some(big.as_bytes())),
        false,
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body.contains("Too large") && r.body.contains("inbound.max_import_bytes"));
    // (fields, file, field at fault, words)
    type Case<'a> = (Vec<(&'a str, &'a str)>, Option<&'a [u8]>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (vec![("mapping", "hr")], None, "file", "choose a CSV file"),
        (
            vec![("mapping", "hr")],
            Some(b""),
            "file",
            "the file is empty",
        ),
        (
            vec![("mapping", "nope")],
            Some(GOOD.as_bytes()),
            "mapping",
            "there is no mapping named &quot;nope&quot;",
        ),
        (
            vec![],
            Some(GOOD.as_bytes()),
            "mapping",
            "choose the mapping",
        ),
        (
            vec![("mapping", "hr"), ("delimiter", "::")],
            Some(GOOD.as_bytes()),
            "delimiter",
            "use one of",
        ),
        (
            vec![("mapping", "hr"), ("delimiter", ";")],
            Some(GOOD.as_bytes()),
            "file",
            "the mapping reads this column",
        ),
    ];
    for (fields, file, field, words) in cases {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend(fields.iter().copied());
        for path in ["/console/upload/preview", "/console/upload"] {
            let r = post_multipart(&f, path, &cookie, multipart(&all, file), false).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{fields:?} {path}");
            assert!(
                r.body.contains(&format!("id=\"{field}-error\"")),
                "{fields:?} {path}: {}",
                r.body
            );
            assert!(r.body.contains(words), "{fields:?} {path}: {}", r.body);
        }
    }
    // htmx swaps only a successful answer: the same error comes with 200, in the preview region.
    let r = post_multipart(
        &f,
        "/console/upload/preview",
        &cookie,
        multipart(&[("csrf", &csrf), ("mapping", "hr")], None),
        true,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Not uploaded") && r.body.contains("choose a CSV file"));

    // Without the session's CSRF token, or not as multipart, nothing is read.
    for body in [
        multipart(&[("mapping", "hr")], Some(GOOD.as_bytes())),
        multipart(
            &[("csrf", "forged"), ("mapping", "hr")],
            Some(GOOD.as_bytes()),
        ),
    ] {
        let r = post_multipart(&f, "/console/upload", &cookie, body, false).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("not sent from a console page"));
    }
    let urlencoded = f
        .post("/console/upload", Some(&cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!(urlencoded.status, StatusCode::BAD_REQUEST);
    assert!(urlencoded.body.contains("multipart/form-data"));
    assert_eq!(jobs(&intake).await, 0);
    assert_eq!(user_count(&f).await, 0);
}

const RULES: &str = r#"
[match]
scim = "userName"
graph = "userPrincipalName"
[catalog.groups]
all-staff = "00000000-0000-0000-0000-0000000000a1"
eng = "00000000-0000-0000-0000-0000000000a2"
[catalog.licenses]
e5 = { sku_id = "00000000-0000-0000-0000-0000000000b1" }
[catalog.roles]
helpdesk = { role_definition_id = "00000000-0000-0000-0000-0000000000c1" }
[defaults]
groups = ["all-staff"]
[[rule]]
name = "engineering"
when = { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" = "Engineering" }
groups = ["eng"]
licenses = ["e5"]
[[rule]]
name = "support desk"
when = { title = { starts_with = "Support" }, active = { eq = true } }
roles = ["helpdesk"]
"#;

/// Every secret the configuration below holds.
const SECRETS: &[&str] = &[
    "static-token-SECRET-0123456789",
    "db-password-SECRET",
    "oauth-client-SECRET-value-0123456789",
    "graph-client-SECRET",
    "oidc-client-SECRET",
    "whsec_c2VjcmV0LXdlYmhvb2stU0VDUkVULTAxMjM0NQ==",
    "whsec_aHItc291cmNlLVNFQ1JFVC0wMTIzNDU2Nzg5",
    "whsec_Y2FsbGJhY2stU0VDUkVULTAxMjM0NTY3ODk=",
];

fn secret_config(dir: &std::path::Path) -> Config {
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let text = format!(
        r#"
listen = "127.0.0.1:9999"
database_url = "postgres://scim:db-password-SECRET@db.example:5432/scim"
token = "static-token-SECRET-0123456789"

[auth]
[[auth.oauth_clients]]
client_id = "okta-client"
tenant = "default"
secrets = [{{ value = "oauth-client-SECRET-value-0123456789" }}]

[graph]
tenant_id = "graph-tenant-visible"
client_id = "graph-client-visible"
client_secret = "graph-client-SECRET"
rules = {rules:?}

[console.oidc]
issuer = "https://login.example/v2.0"
client_id = "console-client-visible"
client_secret = "oidc-client-SECRET"

[console.roles.default]
admin = ["console-admins-visible"]

[governance]
[[governance.webhooks]]
url = "https://hooks.example/review"
secret = "whsec_c2VjcmV0LXdlYmhvb2stU0VDUkVULTAxMjM0NQ=="

[[inbound.sources]]
tenant = "default"
source = "workday"
secrets = ["whsec_aHItc291cmNlLVNFQ1JFVC0wMTIzNDU2Nzg5"]
mapping = "/etc/scim/workday.toml"

[[inbound.callbacks]]
tenant = "default"
url = "https://hr.example/outcomes"
secrets = ["whsec_Y2FsbGJhY2stU0VDUkVULTAxMjM0NTY3ODk="]
"#
    );
    toml::from_str(&text).unwrap()
}

async fn admin_pages_redact_secrets_and_show_the_rules(db: Arc<TestDb>) {
    let (f, _) = fixture(&db, InboundConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    f.console
        .set_server_view(ServerView::from_config(&secret_config(dir.path())));
    let (admin, _) = f.sign_in(Role::Admin).await;

    let config = f.get("/console/admin/config", Some(&admin)).await;
    assert_eq!(config.status, StatusCode::OK, "{}", config.body);
    for secret in SECRETS {
        assert!(
            !config.body.contains(secret),
            "{secret} is on the page: {}",
            config.body
        );
    }
    // Nor any recognisable part of one (each plain secret above says SECRET).
    assert!(!config.body.contains("SECRET"), "{}", config.body);
    for shown in [
        "127.0.0.1:9999",
        "postgres://scim:redacted@db.example:5432/scim",
        "graph-tenant-visible",
        "console-client-visible",
        "console-admins-visible",
        "okta-client",
        "https://hooks.example/review",
        "workday",
        "https://hr.example/outcomes",
        "&lt;redacted&gt;",
    ] {
        assert!(config.body.contains(shown), "{shown}: {}", config.body);
    }

    let rules = f.get("/console/admin/rules", Some(&admin)).await;
    assert_eq!(rules.status, StatusCode::OK, "{}", rules.body);
    let text = rules.body.as_str();
    for want in [
        "<h3 id=\"rule-engineering\">engineering</h3>",
        "equals <code>&quot;Engineering&quot;</code>",
        "Group <strong>eng</strong> (<code>00000000-0000-0000-0000-0000000000a2</code>)",
        "Licence <strong>e5</strong>",
        "<h3 id=\"rule-support-desk\">support desk</h3>",
        "<code>title</code> starts with <code>&quot;Support&quot;</code>",
        "<code>active</code> equals <code>true</code>",
        "Directory role <strong>helpdesk</strong>",
        "Group <strong>all-staff</strong>",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }

    let index = f.get("/console/admin", Some(&admin)).await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.body.contains("href=\"/console/admin/rules\""));

    // Every other role, and an admin of another tenant, is refused every admin page.
    for role in [Role::Viewer, Role::Operator, Role::Approver] {
        let (cookie, _) = f.sign_in(role).await;
        for path in [
            "/console/admin",
            "/console/admin/tenants",
            "/console/admin/rules",
            "/console/admin/config",
        ] {
            let r = f.get(path, Some(&cookie)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{role} {path}");
            assert!(
                r.body.contains(&format!(
                    "the {role} role may not view the server&#39;s administration pages"
                )) || r.body.contains(&format!(
                    "the {role} role may not view the server's administration pages"
                )),
                "{role} {path}: {}",
                r.body
            );
        }
    }
    let other = other_tenant_admin(&f).await;
    for path in ["/console/admin/tenants", "/console/admin/config"] {
        let r = f.get(path, Some(&other)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.body.contains("only an admin of the default tenant"));
    }
}

/// Signs in an admin of tenant `other` (created first); returns the cookie.
async fn other_tenant_admin(f: &Fixture) -> String {
    scim_server::server::ensure_tenant(f.app.store.as_ref(), "other", f.clock.as_ref())
        .await
        .unwrap();
    let set_cookie = f
        .console
        .start_session(&Operator {
            tenant: "other".into(),
            subject: "sub-other-admin".into(),
            display_name: "Other Admin".into(),
            role: Role::Admin,
        })
        .await
        .unwrap();
    set_cookie.split(';').next().unwrap().to_string()
}

async fn tenants_are_listed_and_created(db: Arc<TestDb>) {
    let (f, _) = fixture(&db, InboundConfig::default()).await;
    let (admin, csrf) = f.sign_in(Role::Admin).await;
    let list = f.get("/console/admin/tenants", Some(&admin)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("<code>default</code> (default)"));
    assert!(list.body.contains("<label for=\"id\">Tenant id</label>"));

    let created = f
        .post(
            "/console/admin/tenants",
            Some(&admin),
            &format!("csrf={csrf}&id=contoso&name=Contoso+Ltd&bulk_upsert=on"),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert!(
        created
            .body
            .contains("Tenant <code>contoso</code> is created.")
    );
    let tenant = f.app.store.tenant("contoso").await.unwrap().unwrap();
    assert_eq!(tenant.name, "Contoso Ltd");
    assert!(tenant.bulk_upsert_by_external_id);

    for (form, field, words) in [
        ("id=contoso", "id", "already exists"),
        ("id=no+spaces", "id", "letters, digits"),
        ("id=", "id", "letters, digits"),
        ("id=fine&name=a%0Ab", "name", "on one line"),
    ] {
        let r = f
            .post(
                "/console/admin/tenants",
                Some(&admin),
                &format!("csrf={csrf}&{form}"),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form}");
        assert!(r.body.contains(&format!("id=\"{field}-error\"")), "{form}");
        assert!(r.body.contains(words), "{form}: {}", r.body);
    }
    assert_eq!(f.app.store.list_tenants().await.unwrap().len(), 2);

    // Without the CSRF token, from another role, or from another tenant's admin: refused.
    let forged = f
        .post("/console/admin/tenants", Some(&admin), "id=forged")
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let other = other_tenant_admin(&f).await;
    let other_page = f.get("/console", Some(&other)).await;
    let other_csrf = csrf_of(&other_page.body);
    let r = f
        .post(
            "/console/admin/tenants",
            Some(&other),
            &format!("csrf={other_csrf}&id=sneaky"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(f.app.store.tenant("sneaky").await.unwrap().is_none());
    assert!(f.app.store.tenant("forged").await.unwrap().is_none());
    let refused: Vec<(String, String)> = f
        .console
        .db()
        .recent_actions("other", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.action, a.outcome))
        .collect();
    assert_eq!(
        refused,
        vec![("create_tenant".to_string(), "refused".to_string())]
    );
}

crate::support::both!(
    preview_run_progress_and_report,
    bad_uploads_are_refused_and_queue_nothing,
    admin_pages_redact_secrets_and_show_the_rules,
    tenants_are_listed_and_created,
);
