//! CSV upload from the console: a file of employees, a mapping the server knows, a dry-run
//! preview, then the run as an HR intake job whose progress and per-row report the console shows.
//!
//! There is one importer. The preview and the run call [`crate::inbound::accept_import`], the
//! function behind `POST /inbound/v1/imports`: the same row checks (each refusal names row and
//! column), the same all-or-nothing rule (a file with a refused row queues nothing), the same
//! preview through the write pipeline's decision, and the same job that the intake's worker
//! applies record by record. Only the caller differs: the operator's [`Permit`] stands in for
//! the API's credential, and the job's principal is `console:<subject>`.
//!
//! The report is the one `scim-server import --report` writes ([`ReportLine`]: row, employee
//! id, outcome, column, error), built from the job's records a page at a time.

use super::roles::{Action, Operator, Permit, authorize};
use super::service::{FieldError, permit, record_action};
use super::{Console, ConsoleError};
use crate::inbound::import::ReportLine;
use crate::inbound::queue::{Counts, OperationView, status};
use crate::inbound::{ImportPreview, ImportReply, Intake};
use serde_json::Value;
use time::OffsetDateTime;

/// The job source of a CSV upload (as `accept_import` records it).
const CSV_SOURCE: &str = "csv";
/// Records read per page of a report.
pub const REPORT_PAGE: u32 = 1000;
/// The longest mapping or delimiter name a form may send.
const MAX_NAME_LEN: usize = 100;

/// The largest file the console accepts: `inbound.max_import_bytes`, or its default when the
/// server runs no intake (nothing is accepted then anyway).
pub fn max_file_bytes(console: &Console) -> usize {
    console.app().inbound.as_deref().map_or_else(
        || crate::inbound::InboundConfig::default().max_import_bytes,
        |i| i.config.max_import_bytes,
    )
}

/// A size for people: `32.0 MiB`, `200 bytes`.
pub fn size_text(bytes: usize) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// What a person reads when their file is over `limit` bytes.
pub fn too_large_message(limit: usize) -> String {
    format!(
        "the file is larger than {} (the server's `inbound.max_import_bytes`); split it into \
         smaller files, or import it on the server with `scim-server import`",
        size_text(limit)
    )
}

fn intake(console: &Console) -> Result<&Intake, ConsoleError> {
    console.app().inbound.as_deref().ok_or_else(|| {
        ConsoleError::NotFound(
            "the HR intake is not enabled on this server ([inbound] enabled, and a database \
             file or PostgreSQL), so CSV files cannot be uploaded"
                .into(),
        )
    })
}

/// The mappings an upload of the operator's tenant may name (`[inbound.mappings]`, then the
/// tenant's HR event sources); `None` when the server runs no intake.
pub fn mappings(
    console: &Console,
    operator: &Operator,
) -> Result<Option<Vec<String>>, ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    Ok(console
        .app()
        .inbound
        .as_deref()
        .map(|i| i.mapping_names(&operator.tenant)))
}

/// An upload as the form sends it.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The mapping's name.
    pub mapping: &'a str,
    /// The delimiter's name (`,`, `;`, `tab`, `|`); empty for `,`.
    pub delimiter: &'a str,
    /// The file's bytes; `None` when no file was chosen.
    pub file: Option<&'a [u8]>,
    /// The file was larger than [`max_file_bytes`] (and not read).
    pub oversize: bool,
}

/// Checks the form's fields the import function would refuse without naming a field.
fn check_fields(
    console: &Console,
    operator: &Operator,
    upload: &Upload<'_>,
) -> Result<Result<(), FieldError>, ConsoleError> {
    let intake = intake(console)?;
    let field = |field: &'static str, message: String| Ok(Err(FieldError { field, message }));
    if upload.oversize {
        return field("file", too_large_message(intake.config.max_import_bytes));
    }
    if upload.mapping.is_empty() {
        return field(
            "mapping",
            "choose the mapping the file's columns follow".into(),
        );
    }
    if upload.mapping.len() > MAX_NAME_LEN
        || intake.mapping(&operator.tenant, upload.mapping).is_none()
    {
        return field(
            "mapping",
            format!(
                "there is no mapping named {:?}: choose one of the list ([inbound.mappings] or an \
                 HR event source of this tenant)",
                upload
                    .mapping
                    .chars()
                    .take(MAX_NAME_LEN)
                    .collect::<String>()
            ),
        );
    }
    if let Err(why) = crate::inbound::import::delimiter(delimiter_name(upload.delimiter)) {
        return field("delimiter", why);
    }
    match upload.file {
        None => field(
            "file",
            "choose a CSV file (UTF-8, the header row first)".into(),
        ),
        Some([]) => field(
            "file",
            "the file is empty: the first row must name the columns".into(),
        ),
        Some(_) => Ok(Ok(())),
    }
}

fn delimiter_name(name: &str) -> Option<&str> {
    (!name.is_empty()).then_some(name)
}

/// The intake's answer to a refused file (400): an error for the file field. Anything else is
/// not the person's to fix.
fn file_error(e: scim_core::Error) -> Result<FieldError, ConsoleError> {
    match e.status() {
        400 => Ok(FieldError {
            field: "file",
            message: e.detail().to_string(),
        }),
        413 => Err(ConsoleError::TooLarge(e.detail().to_string())),
        _ => Err(e.into()),
    }
}

/// Previews an upload: each row's outcome (`created`, `updated`, `unchanged`, `failed`,
/// `rejected` with its column), nothing written or queued. A preview made is recorded as an
/// action (the file was read and every row's person looked up) with the mapping's name.
pub async fn preview(
    console: &Console,
    operator: &Operator,
    upload: Upload<'_>,
    request_id: Option<&str>,
) -> Result<Result<ImportPreview, FieldError>, ConsoleError> {
    let permit = permit(
        console,
        operator,
        Action::PreviewImport,
        upload.mapping,
        request_id,
    )
    .await?;
    if let Err(e) = check_fields(console, operator, &upload)? {
        return Ok(Err(e));
    }
    match accept(console, &permit, &upload, true, request_id).await? {
        Ok(ImportReply::Preview(p)) => {
            record_action(console, &permit, upload.mapping, request_id).await?;
            Ok(Ok(p))
        }
        Ok(ImportReply::Queued(_)) => {
            Err(ConsoleError::Internal("a dry run queued a job".to_string()))
        }
        Err(e) => Ok(Err(e)),
    }
}

/// Uploads a file as an HR intake job (every row checked first: a refused row queues nothing
/// and is an error naming row and column). Returns the job's id.
pub async fn run(
    console: &Console,
    operator: &Operator,
    upload: Upload<'_>,
    request_id: Option<&str>,
) -> Result<Result<String, FieldError>, ConsoleError> {
    let permit = permit(console, operator, Action::RunImport, "", request_id).await?;
    if let Err(e) = check_fields(console, operator, &upload)? {
        return Ok(Err(e));
    }
    match accept(console, &permit, &upload, false, request_id).await? {
        Ok(ImportReply::Queued(job)) => {
            record_action(console, &permit, &job, request_id).await?;
            Ok(Ok(job))
        }
        Ok(ImportReply::Preview(_)) => Err(ConsoleError::Internal(
            "an upload answered with a preview".to_string(),
        )),
        Err(e) => Ok(Err(e)),
    }
}

async fn accept(
    console: &Console,
    permit: &Permit,
    upload: &Upload<'_>,
    dry_run: bool,
    request_id: Option<&str>,
) -> Result<Result<ImportReply, FieldError>, ConsoleError> {
    let ctx = super::actions::operator_ctx(console, permit, request_id);
    match crate::inbound::accept_import(
        console.app(),
        &ctx,
        upload.mapping,
        delimiter_name(upload.delimiter),
        dry_run,
        upload.file.unwrap_or_default(),
    )
    .await
    {
        Ok(reply) => Ok(Ok(reply)),
        Err(e) => Ok(Err(file_error(e)?)),
    }
}

/// Where an upload's job stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The job's id.
    pub id: String,
    /// See [`status`].
    pub status: String,
    /// Records per outcome.
    pub counts: Counts,
    /// Records final (written, unchanged or failed).
    pub done: u64,
    /// When the file was accepted.
    pub created: OffsetDateTime,
    /// When the job finished.
    pub finished_at: Option<OffsetDateTime>,
    /// Rows per second since the file was accepted (until it finished); `None` before the
    /// first row is done.
    pub rate: Option<f64>,
    /// Why the last attempt failed, for a job retrying or given up.
    pub last_error: Option<String>,
}

impl Progress {
    /// Whether the job will do nothing more by itself (finished, or a dead letter).
    pub fn settled(&self) -> bool {
        matches!(
            self.status.as_str(),
            status::COMPLETED | status::COMPLETED_WITH_ERRORS | status::DEAD | status::SUPERSEDED
        )
    }

    /// Whole percent of the records done.
    pub fn percent(&self) -> u64 {
        (self.done * 100)
            .checked_div(self.counts.total)
            .unwrap_or(0)
    }
}

/// An upload's job of the operator's tenant, as it stands now: counts only (no records read).
pub async fn progress(
    console: &Console,
    operator: &Operator,
    id: &str,
) -> Result<Progress, ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    let job = intake(console)?
        .queue
        .job_page(&operator.tenant, id, 1, 0)
        .await?
        .filter(|j| j.source == CSV_SOURCE)
        .ok_or_else(|| {
            ConsoleError::NotFound(format!("there is no CSV upload {id} in this tenant"))
        })?;
    let done = job.counts.total - job.counts.pending;
    let until = job.finished.unwrap_or_else(|| console.app().clock.now());
    let seconds = (until - job.created).as_seconds_f64();
    Ok(Progress {
        rate: (done > 0 && seconds > 0.0).then(|| done as f64 / seconds),
        id: job.id,
        status: job.status,
        counts: job.counts,
        done,
        created: job.created,
        finished_at: job.finished,
        last_error: job.last_error,
    })
}

/// One page of an upload's report: the lines of up to [`REPORT_PAGE`] records after record
/// `after` (`-1` for the first page), and the key of the next page when there may be one.
pub async fn report_page(
    console: &Console,
    operator: &Operator,
    id: &str,
    after: i64,
) -> Result<(Vec<ReportLine>, Option<i64>), ConsoleError> {
    authorize(operator, Action::ViewDirectory)?;
    let page = intake(console)?
        .queue
        .operations_after(&operator.tenant, id, after, REPORT_PAGE)
        .await?;
    let next = page
        .last()
        .map(|(seq, _)| *seq)
        .filter(|_| page.len() == REPORT_PAGE as usize);
    Ok((
        page.into_iter()
            .map(|(seq, op)| report_line(seq, op))
            .collect(),
        next,
    ))
}

/// A record of a CSV job as a report line. The job's `bulkId` is the row number (the header
/// being row 1); the column is empty, since a row with a bad column is refused before the job
/// exists; the error is the SCIM error's status and detail, as the command writes it.
pub fn report_line(seq: i64, op: OperationView) -> ReportLine {
    let row = op
        .bulk_id
        .as_deref()
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| u64::try_from(seq).unwrap_or(0) + 2);
    let error = op.error.as_ref().map(scim_error_text).unwrap_or_default();
    ReportLine {
        row,
        employee_id: op.external_id.unwrap_or_default(),
        outcome: op.outcome,
        column: String::new(),
        error,
    }
}

/// `"409 userName … is taken"` from a SCIM error body (`status` is a string on the wire).
fn scim_error_text(e: &Value) -> String {
    let status = match &e["status"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let detail = e["detail"].as_str().unwrap_or_default();
    format!("{status} {detail}").trim().to_string()
}

/// The report's CSV text for `lines`, with the header row when `header` is set (the command's
/// columns: `row,employeeId,outcome,column,error`).
pub fn report_csv(lines: &[ReportLine], header: bool) -> Result<Vec<u8>, ConsoleError> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(header)
        .from_writer(Vec::new());
    if header && lines.is_empty() {
        w.write_record(["row", "employeeId", "outcome", "column", "error"])
            .map_err(|e| ConsoleError::Internal(format!("report: {e}")))?;
    }
    for line in lines {
        w.serialize(line)
            .map_err(|e| ConsoleError::Internal(format!("report: {e}")))?;
    }
    w.into_inner()
        .map_err(|e| ConsoleError::Internal(format!("report: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_for_people() {
        assert_eq!(size_text(200), "200 bytes");
        assert_eq!(size_text(1536), "1.5 KiB");
        assert_eq!(size_text(32 << 20), "32.0 MiB");
    }

    #[test]
    fn report_lines_as_the_command_writes_them() {
        let op = |bulk: Option<&str>, outcome: &str, error: Option<Value>| OperationView {
            bulk_id: bulk.map(str::to_string),
            external_id: Some("E7".into()),
            outcome: outcome.into(),
            id: None,
            error,
        };
        let lines = vec![
            report_line(0, op(Some("2"), "created", None)),
            report_line(
                1,
                op(
                    Some("3"),
                    "failed",
                    Some(
                        json!({"status": "409", "scimType": "uniqueness", "detail": "taken, really"}),
                    ),
                ),
            ),
            report_line(5, op(None, "pending", None)),
        ];
        let text = String::from_utf8(report_csv(&lines, true).unwrap()).unwrap();
        assert_eq!(
            text,
            "row,employeeId,outcome,column,error\n2,E7,created,,\n3,E7,failed,,\"409 taken, \
             really\"\n7,E7,pending,,\n"
        );
        assert_eq!(
            String::from_utf8(report_csv(&[], true).unwrap()).unwrap(),
            "row,employeeId,outcome,column,error\n"
        );
        assert_eq!(
            String::from_utf8(report_csv(&lines[..1], false).unwrap()).unwrap(),
            "2,E7,created,,\n"
        );
    }
}
