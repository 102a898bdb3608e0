//! The CSV upload pages: the form (file, mapping, delimiter), the dry-run preview, the run, the
//! job's live progress and its per-row report. [`crate::console::upload`] authorises and calls
//! the HR intake.
//!
//! The form is `multipart/form-data` (a file cannot travel in a urlencoded form) and carries the
//! session's CSRF token as its first field, like every console form; [`UploadPost`] checks it
//! before any handler runs. Without script, "Preview" and "Import" are two submit buttons of one
//! form; with htmx, "Preview" swaps the preview into the page, so the chosen file stays chosen for
//! "Import". The progress region polls its own fragment every second (htmx) until the job
//! settles; without script it has a refresh link.

use crate::console::service::FieldError;
use crate::console::session::Session;
use crate::console::upload::{self, Progress, Upload};
use crate::console::views::{Nav, csrf_field, dash, page, when};
use crate::console::{Console, ConsoleError};
use crate::inbound::ImportPreview;
use crate::inbound::import::ReportLine;
use axum::body::{Body, Bytes};
use axum::extract::multipart::MultipartError;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Multipart, Path, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderValue, StatusCode, header};
use maud::{Markup, html};

/// Preview rows shown on the page (problems first); the counts cover every row.
pub const PREVIEW_ROWS_SHOWN: usize = 100;
/// The largest text field (CSRF token, mapping, delimiter) read from the form.
const MAX_TEXT_FIELD: usize = 1024;

/// The upload form as posted: its session (CSRF token checked) and fields.
#[derive(Debug)]
pub struct UploadPost {
    /// The session that posted.
    pub session: Session,
    /// The mapping's name.
    pub mapping: String,
    /// The delimiter's name.
    pub delimiter: String,
    /// The file, when one was chosen (and fit).
    pub file: Option<Vec<u8>>,
    /// The file was larger than `inbound.max_import_bytes` (and not read further).
    pub oversize: bool,
    /// Whether htmx sent it (the answer is a region of the page).
    pub htmx: bool,
}

fn too_large(limit: usize) -> ConsoleError {
    ConsoleError::TooLarge(upload::too_large_message(limit))
}

fn unreadable(limit: usize, e: &MultipartError) -> ConsoleError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ConsoleError::BadRequest(format!(
            "the upload could not be read ({}); send it again from the upload page",
            e.body_text()
        ))
    }
}

impl<S> FromRequest<S> for UploadPost
where
    S: Send + Sync,
    Console: FromRef<S>,
{
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let htmx = parts.headers.contains_key("hx-request");
        let limit = upload::max_file_bytes(&Console::from_ref(state));
        let mut multipart = Multipart::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|e| {
                ConsoleError::BadRequest(format!(
                    "the upload must be sent as a form with a file (multipart/form-data): {}",
                    e.body_text()
                ))
            })?;
        let (mut csrf, mut mapping, mut delimiter, mut file) = (None, None, None, None);
        let mut oversize = false;
        'fields: while let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(|e| unreadable(limit, &e))?
        {
            let name = field.name().unwrap_or_default().to_string();
            if name == "file" {
                let chosen = field.file_name().is_some_and(|n| !n.is_empty());
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| unreadable(limit, &e))? {
                    if bytes.len() + chunk.len() > limit {
                        // The form sends its CSRF token first: with it checked, the page answers
                        // with the error next to the file (htmx can show that); without it, the
                        // request is refused as it stands.
                        if csrf.is_none() {
                            return Err(too_large(limit));
                        }
                        oversize = true;
                        break 'fields;
                    }
                    bytes.extend_from_slice(&chunk);
                }
                // A browser sends an empty part with no file name when none was chosen.
                file = (chosen || !bytes.is_empty()).then_some(bytes);
                continue;
            }
            let slot = match name.as_str() {
                "csrf" => &mut csrf,
                "mapping" => &mut mapping,
                "delimiter" => &mut delimiter,
                _ => continue,
            };
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| unreadable(limit, &e))? {
                if text.len() + chunk.len() > MAX_TEXT_FIELD {
                    return Err(ConsoleError::BadRequest(format!(
                        "the form's {name} field is longer than {MAX_TEXT_FIELD} bytes"
                    )));
                }
                text.extend_from_slice(&chunk);
            }
            *slot = Some(String::from_utf8_lossy(&text).into_owned());
        }
        session.check_csrf(csrf.as_deref())?;
        Ok(Self {
            session,
            mapping: mapping.unwrap_or_default().trim().to_string(),
            delimiter: delimiter.unwrap_or_default().trim().to_string(),
            file: file.filter(|_| !oversize),
            oversize,
            htmx,
        })
    }
}

impl UploadPost {
    fn upload(&self) -> Upload<'_> {
        Upload {
            mapping: &self.mapping,
            delimiter: &self.delimiter,
            file: self.file.as_deref(),
            oversize: self.oversize,
        }
    }
}

const DELIMITERS: &[(&str, &str)] = &[
    ("", "Comma ( , )"),
    (";", "Semicolon ( ; )"),
    ("tab", "Tab"),
    ("|", "Pipe ( | )"),
];

fn error_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a FieldError> {
    errors.iter().find(|e| e.field == field)
}

fn upload_form(
    session: &Session,
    mappings: &[String],
    post: Option<&UploadPost>,
    errors: &[FieldError],
    limit: usize,
) -> Markup {
    let chosen_mapping = post.map_or("", |p| p.mapping.as_str());
    let chosen_delimiter = post.map_or("", |p| p.delimiter.as_str());
    let described = |field: &str, hint: &str| {
        let mut ids = vec![hint.to_string()];
        if error_for(errors, field).is_some() {
            ids.push(format!("{field}-error"));
        }
        ids.join(" ")
    };
    let field_error = |field: &str| {
        html! {
            @if let Some(e) = error_for(errors, field) {
                p.error id=(format!("{field}-error")) role="alert" { (e.message) }
            }
        }
    };
    html! {
        form method="post" action="/console/upload" enctype="multipart/form-data"
            hx-encoding="multipart/form-data" {
            (csrf_field(session))
            div.field {
                label for="file" { "CSV file" }
                p.hint #file-hint { "UTF-8 text, the header row first, one employee per row. At most "
                    (upload::size_text(limit)) "." }
                input #file type="file" name="file" accept=".csv,text/csv,text/plain"
                    aria-describedby=(described("file", "file-hint"))
                    aria-invalid=[error_for(errors, "file").map(|_| "true")];
                (field_error("file"))
            }
            div.field {
                label for="mapping" { "Mapping" }
                p.hint #mapping-hint { "Which HR columns become which SCIM attributes (the server's [inbound.mappings] and this tenant's HR sources)." }
                select #mapping name="mapping" required
                    aria-describedby=(described("mapping", "mapping-hint"))
                    aria-invalid=[error_for(errors, "mapping").map(|_| "true")] {
                    @if mappings.len() != 1 { option value="" { "Choose a mapping" } }
                    @for m in mappings {
                        option value=(m) selected[m == chosen_mapping] { (m) }
                    }
                }
                (field_error("mapping"))
            }
            div.field {
                label for="delimiter" { "Delimiter" }
                p.hint #delimiter-hint { "What separates the columns (many European exports use a semicolon)." }
                select #delimiter name="delimiter"
                    aria-describedby=(described("delimiter", "delimiter-hint"))
                    aria-invalid=[error_for(errors, "delimiter").map(|_| "true")] {
                    @for (value, label) in DELIMITERS {
                        option value=(value) selected[*value == chosen_delimiter] { (label) }
                    }
                }
                (field_error("delimiter"))
            }
            p.buttons {
                button.secondary type="submit" formaction="/console/upload/preview"
                    hx-post="/console/upload/preview" hx-target="#preview" hx-select="#preview"
                    hx-swap="outerHTML" { "Preview (dry run)" }
                button type="submit" { "Import" }
            }
        }
    }
}

fn counts_list(pairs: &[(&str, u64)]) -> Markup {
    html! {
        dl.counts {
            @for (label, n) in pairs {
                div { dt { (label) } dd { (n) } }
            }
        }
    }
}

fn report_table(lines: &[&ReportLine]) -> Markup {
    html! {
        div.table-wrap { table {
            thead { tr {
                th scope="col" { "Row" } th scope="col" { "Employee id" } th scope="col" { "Outcome" }
                th scope="col" { "Column" } th scope="col" { "Error" }
            } }
            tbody { @for l in lines { tr {
                td { (l.row) }
                td { @if l.employee_id.is_empty() { (dash()) } @else { (l.employee_id) } }
                td { (l.outcome) }
                td { @if l.column.is_empty() { (dash()) } @else { code { (l.column) } } }
                td { @if l.error.is_empty() { (dash()) } @else { (l.error) } }
            } } }
        } }
    }
}

/// The preview region: the result of a dry run, the errors that stopped it, or nothing yet.
fn preview_region(preview: Option<&ImportPreview>, errors: &[FieldError]) -> Markup {
    html! {
        section #preview aria-labelledby="preview-heading" {
            @if !errors.is_empty() {
                h2 #preview-heading { "Not uploaded" }
                div.notice.warn role="alert" {
                    @for e in errors { p { (field_label(e.field)) ": " (e.message) } }
                }
            } @else if let Some(p) = preview {
                h2 #preview-heading { "Preview" }
                @let c = &p.counts;
                p role="status" { "Dry run of " (c.rows) " rows: nothing was written." }
                (counts_list(&[("Created", c.created), ("Updated", c.updated), ("Unchanged", c.unchanged), ("Failed", c.failed), ("Rejected", c.rejected)]))
                @if c.rejected > 0 {
                    p.notice.warn { "Rejected rows stop the import: fix them in the file (the table names row and column) and preview again. Nothing is written while one row is rejected." }
                } @else if c.failed > 0 {
                    p.notice.warn { "Failed rows would be refused by the write (for example a user name another person has); the other rows would be written." }
                } @else {
                    p.notice.ok { "Every row passes. Choose Import to run it." }
                }
                @let shown = rows_shown(&p.rows);
                @if shown.len() < p.rows.len() {
                    p { "Showing " (shown.len()) " of " (p.rows.len()) " rows, rows with problems first." }
                }
                (report_table(&shown))
            } @else {
                h2 #preview-heading { "Preview" }
                p { "Preview a file to see what each row would do before anything is written." }
            }
        }
    }
}

/// The preview rows the page shows: rows with problems first, each group in file order, at
/// most [`PREVIEW_ROWS_SHOWN`].
fn rows_shown(rows: &[ReportLine]) -> Vec<&ReportLine> {
    let mut shown: Vec<&ReportLine> = rows.iter().collect();
    shown.sort_by_key(|l| !matches!(l.outcome.as_str(), "rejected" | "failed"));
    shown.truncate(PREVIEW_ROWS_SHOWN);
    shown
}

fn field_label(field: &str) -> &'static str {
    match field {
        "file" => "CSV file",
        "mapping" => "Mapping",
        "delimiter" => "Delimiter",
        _ => "Form",
    }
}

fn upload_page(
    console: &Console,
    session: &Session,
    post: Option<&UploadPost>,
    preview: Option<&ImportPreview>,
    errors: &[FieldError],
) -> Result<Markup, ConsoleError> {
    let mappings = upload::mappings(console, &session.operator)?;
    let limit = upload::max_file_bytes(console);
    let may_upload = crate::console::roles::authorize(
        &session.operator,
        crate::console::roles::Action::RunImport,
    )
    .is_ok();
    Ok(page(
        session,
        Nav::Upload,
        "Upload a CSV file",
        html! {
            p { "Employees from an HR export, upserted by employee id (" code { "externalId" } ") as the HR intake does: every row is checked first, and a file with a rejected row writes nothing. The import runs as an intake job; its progress and per-row report appear on the next page." }
            @match &mappings {
                None => { p.notice.warn { "The HR intake is not enabled on this server, so files cannot be uploaded." } }
                Some(m) if m.is_empty() => { p.notice.warn { "The server has no mapping for CSV files: an administrator adds one under [inbound.mappings] in the configuration." } }
                Some(m) => {
                    @if !may_upload { p.notice { "Your role may look but not upload: only operators and admins upload files." } }
                    (upload_form(session, m, post, errors, limit))
                    (preview_region(preview, errors))
                }
            }
        },
    ))
}

/// `GET /console/upload`.
pub async fn form(
    State(console): State<Console>,
    session: Session,
) -> Result<Markup, ConsoleError> {
    upload_page(&console, &session, None, None, &[])
}

/// A form error's answer: the page with the error next to its field (400), or for htmx the
/// page with status 200 (htmx swaps only successful answers; it takes the preview region,
/// which lists the errors).
fn refused(
    console: &Console,
    post: &UploadPost,
    error: FieldError,
) -> Result<Response, ConsoleError> {
    let errors = [error];
    let body = upload_page(console, &post.session, Some(post), None, &errors)?;
    let status = if post.htmx {
        StatusCode::OK
    } else if post.oversize {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((status, body).into_response())
}

/// `POST /console/upload/preview`: the dry run.
pub async fn preview(
    State(console): State<Console>,
    post: UploadPost,
) -> Result<Response, ConsoleError> {
    let rid = post.session.request_id.clone();
    match upload::preview(
        &console,
        &post.session.operator,
        post.upload(),
        rid.as_deref(),
    )
    .await?
    {
        Ok(p) => {
            Ok(upload_page(&console, &post.session, Some(&post), Some(&p), &[])?.into_response())
        }
        Err(e) => refused(&console, &post, e),
    }
}

/// `POST /console/upload`: queues the file as an intake job and shows its progress.
pub async fn run(
    State(console): State<Console>,
    post: UploadPost,
) -> Result<Response, ConsoleError> {
    let rid = post.session.request_id.clone();
    match upload::run(
        &console,
        &post.session.operator,
        post.upload(),
        rid.as_deref(),
    )
    .await?
    {
        Ok(job) => Ok(Redirect::to(&format!("/console/upload/jobs/{job}")).into_response()),
        Err(e) => refused(&console, &post, e),
    }
}

fn progress_region(p: &Progress) -> Markup {
    let c = &p.counts;
    let headline = match p.status.as_str() {
        crate::inbound::queue::status::COMPLETED => {
            format!("Done: {} of {} rows.", p.done, c.total)
        }
        crate::inbound::queue::status::COMPLETED_WITH_ERRORS => format!(
            "Done with errors: {} of {} rows, {} failed.",
            p.done, c.total, c.failed
        ),
        crate::inbound::queue::status::DEAD => format!(
            "Stopped: the intake gave up after repeated failures, {} of {} rows done; an operator can retry it from the intake page.",
            p.done, c.total
        ),
        crate::inbound::queue::status::RUNNING => format!(
            "Importing: {} of {} rows ({} %).",
            p.done,
            c.total,
            p.percent()
        ),
        _ => format!(
            "Waiting for the intake worker: {} of {} rows done.",
            p.done, c.total
        ),
    };
    let url = format!("/console/upload/jobs/{}/progress", p.id);
    html! {
        @if p.settled() {
            div #progress role="status" {
                (progress_body(p, &headline))
            }
        } @else {
            div #progress role="status" hx-get=(url) hx-trigger="every 1s" hx-swap="outerHTML" {
                (progress_body(p, &headline))
                p { a href=(format!("/console/upload/jobs/{}", p.id)) { "Refresh" } }
            }
        }
    }
}

fn progress_body(p: &Progress, headline: &str) -> Markup {
    let c = &p.counts;
    html! {
        p { strong { (headline) } }
        progress max=(c.total.max(1)) value=(p.done) aria-label="Rows done" { (p.percent()) " %" }
        (counts_list(&[("Created", c.created), ("Updated", c.updated), ("Unchanged", c.unchanged), ("Failed", c.failed), ("Pending", c.pending)]))
        p {
            "Rate: " @match p.rate { Some(r) => { (format!("{r:.1}")) " rows/s" }, None => { (dash()) } }
            " · accepted " (when(p.created))
            @if let Some(f) = p.finished_at { " · finished " (when(f)) }
        }
        @if let Some(e) = &p.last_error { p.notice.warn { "Last attempt: " (e) } }
    }
}

/// `GET /console/upload/jobs/{id}`: the job's progress and report.
pub async fn job(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    let p = upload::progress(&console, &session.operator, &id).await?;
    Ok(page(
        &session,
        Nav::Upload,
        "CSV upload",
        html! {
            p { "Intake job " a href=(format!("/console/intake/{}", p.id)) { code { (p.id) } } ": every row is applied by the HR intake's worker, as for an upload through the API." }
            (progress_region(&p))
            h2 { "Report" }
            p { "One line per row: row, employee id, outcome, column, error (the report " code { "scim-server import --report" } " writes). Rows still pending show as " code { "pending" } "." }
            p { a.button href=(format!("/console/upload/jobs/{}/report.csv", p.id)) download { "Download the report (CSV)" } }
            p { a href="/console/upload" { "Upload another file" } }
        },
    ))
}

/// `GET /console/upload/jobs/{id}/progress`: the progress region alone (htmx polls it).
pub async fn progress(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    let p = upload::progress(&console, &session.operator, &id).await?;
    Ok(progress_region(&p))
}

/// `GET /console/upload/jobs/{id}/report.csv`: the per-row report, streamed a page of records
/// at a time (a job may hold 100,000 rows).
pub async fn report(
    State(console): State<Console>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    // The job must be a CSV upload of this tenant before anything is sent.
    let p = upload::progress(&console, &session.operator, &id).await?;
    let operator = session.operator;
    let job = p.id.clone();
    let pages = futures::stream::unfold(Some(-1i64), move |after| {
        let (console, operator, job) = (console.clone(), operator.clone(), job.clone());
        async move {
            let after = after?;
            let page = upload::report_page(&console, &operator, &job, after)
                .await
                .and_then(|(lines, next)| Ok((upload::report_csv(&lines, after < 0)?, next)));
            Some(match page {
                Ok((bytes, next)) => (Ok(Bytes::from(bytes)), next),
                Err(e) => {
                    tracing::error!(job_id = %job, error = %e, "console report download failed");
                    (
                        Err(std::io::Error::other("the report could not be read")),
                        None,
                    )
                }
            })
        }
    });
    let safe: String =
        p.id.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
    // Fused: the server's layers (compression) may poll a body once more after its end.
    let mut response = Body::from_stream(futures::StreamExt::fuse(pages)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"upload-{safe}-report.csv\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
