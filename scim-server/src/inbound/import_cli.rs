//! `scim-server import FILE.csv --mapping FILE.toml [--tenant T] [--dry-run] [--report FILE]`.
//!
//! The command writes directly through the server's write functions, in this process, the way
//! `token create` writes tokens: each row is [`upsert::apply`] (the function the intake worker
//! runs for a bulkUpload record), so each write goes through `service::write` and commits with
//! its change record; the Graph bridge and a running server see the writes like any other.
//! Queuing the rows as jobs instead would add a second copy of the file in the database and
//! make the command's report wait on a worker that may not be running; a file that should be
//! processed by the server is uploaded to `POST /inbound/v1/imports` instead.
//!
//! Two passes over the file, both streamed (constant memory): the first checks every row (the
//! file's shape, the mapping, SCIM values) and writes nothing; when a row is refused the
//! command stops there (exit 1, nothing written) with a report naming each refused row and
//! column. The second pass upserts, or with `--dry-run` previews each row through the write
//! pipeline's own decision ([`upsert::preview`]): created, updated, unchanged, or failed.
//! A row the write refuses (a `userName` another user has) fails alone; a failure of the
//! database stops the command, and running it again is safe (rows are idempotent upserts).

use super::import::{CsvRows, ReportLine, Tally};
use super::mapping::Mapping;
use super::queue::Outcome;
use super::{open_queue, upsert};
use crate::auth::{AuthConfig, AuthService, CredentialKind, Principal, token_store};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::service::RequestCtx;
use crate::state::AppState;
use anyhow::Context;
use scim_core::schema::USER_RESOURCE;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use time::OffsetDateTime;

/// `import` arguments.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The CSV file: a header row naming the HR fields, then one employee per row.
    pub file: PathBuf,
    /// The mapping file (HR field -> SCIM attribute; the format HR event sources use).
    #[arg(long)]
    pub mapping: PathBuf,
    /// The tenant written to (default: the configured default tenant).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Check every row and show what would be created, updated, left unchanged or refused;
    /// write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write a per-row report here (CSV: row, employeeId, outcome, column, error).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The field delimiter: `,` `;` `tab` or `|`.
    #[arg(long, default_value = ",")]
    pub delimiter: String,
}

/// Progress on standard error: a bar with rate and ETA on a terminal, a plain line every few
/// seconds otherwise (a log file or CI output is not redrawn).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: u64,
    verb: &'static str,
    clock: Arc<dyn Clock>,
    started: OffsetDateTime,
    last_line: OffsetDateTime,
}

impl Progress {
    const LINE_EVERY: time::Duration = time::Duration::seconds(5);

    fn new(total: u64, verb: &'static str, clock: Arc<dyn Clock>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} rows, {per_sec}, ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(verb);
            bar
        });
        let now = clock.now();
        Self {
            bar,
            total,
            done: 0,
            verb,
            clock,
            started: now,
            last_line: now,
        }
    }

    fn step(&mut self) {
        self.done += 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
            return;
        }
        let now = self.clock.now();
        if now - self.last_line >= Self::LINE_EVERY {
            self.last_line = now;
            eprintln!("{}", self.line(now));
        }
    }

    fn line(&self, now: OffsetDateTime) -> String {
        let seconds = (now - self.started).as_seconds_f64().max(1e-3);
        let rate = self.done as f64 / seconds;
        let left = self.total.saturating_sub(self.done) as f64;
        let eta = if rate > 0.0 { left / rate } else { 0.0 };
        format!(
            "{}: {}/{} rows, {rate:.0} rows/s, ETA {eta:.0} s",
            self.verb, self.done, self.total
        )
    }

    fn finish(self) {
        match self.bar {
            Some(bar) => bar.finish(),
            None => eprintln!("{}", self.line(self.clock.now())),
        }
    }
}

/// Writes report lines when `--report` was given.
struct Report(Option<csv::Writer<std::fs::File>>);

impl Report {
    fn create(path: Option<&Path>) -> anyhow::Result<Self> {
        Ok(Self(match path {
            Some(p) => Some(
                csv::Writer::from_path(p)
                    .with_context(|| format!("--report: creating {}", p.display()))?,
            ),
            None => None,
        }))
    }

    fn write(&mut self, line: &ReportLine) -> anyhow::Result<()> {
        if let Some(w) = &mut self.0 {
            w.serialize(line).context("writing the report")?;
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        if let Some(mut w) = self.0 {
            w.flush().context("writing the report")?;
        }
        Ok(())
    }
}

/// Runs `import`.
pub async fn run(args: ImportArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let delimiter = super::import::delimiter(Some(&args.delimiter))
        .map_err(|e| anyhow::anyhow!("--delimiter: {e}"))?;
    let mapping_text = std::fs::read_to_string(&args.mapping)
        .with_context(|| format!("--mapping: reading {}", args.mapping.display()))?;
    let mapping = Mapping::parse(&mapping_text)
        .map_err(|e| anyhow::anyhow!("--mapping {}: {e}", args.mapping.display()))?;
    let open_file = || {
        std::fs::File::open(&args.file)
            .map(std::io::BufReader::new)
            .with_context(|| format!("reading {}", args.file.display()))
    };
    open_file()?;

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = crate::server::open_store(&config.database_url).await?;
    store.migrate().await.context("applying migrations")?;
    let tenant = args
        .tenant
        .clone()
        .unwrap_or_else(|| config.default_tenant.clone());
    if tenant == config.default_tenant {
        crate::server::ensure_tenant(store.as_ref(), &tenant, clock.as_ref()).await?;
    } else if store.tenant(&tenant).await?.is_none() {
        anyhow::bail!(
            "--tenant {tenant:?} does not exist (create it with `scim-server tenant create`)"
        );
    }
    let queue = open_queue(&config.database_url).await?;
    let auth = AuthService::from_config(
        &AuthConfig::default(),
        token_store(store.clone()),
        clock.clone(),
    )?;
    let state = AppState::with_clock(config, store, Arc::new(auth), clock.clone());
    let users = state
        .registry
        .resource_type(USER_RESOURCE)
        .context("no User resource type")?;

    let mut report = Report::create(args.report.as_deref())?;
    let mut shown = 0;
    let mut show = |e: &super::import::RowError| {
        if shown < 20 {
            eprintln!("{e}");
        } else if shown == 20 {
            eprintln!("… (every refused row is in the report)");
        }
        shown += 1;
    };

    // Pass 1: every row checked, nothing written.
    let mut rows = match CsvRows::open(open_file()?, delimiter, &mapping, &state.registry, users) {
        Ok(rows) => rows,
        Err(e) => {
            show(&e);
            report.write(&ReportLine::rejected(&e))?;
            report.finish()?;
            eprintln!("nothing was written");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut valid = 0u64;
    let mut rejected = 0u64;
    while let Some(row) = rows.next_row() {
        match row {
            Ok(_) => valid += 1,
            Err(e) => {
                rejected += 1;
                show(&e);
                if !args.dry_run {
                    report.write(&ReportLine::rejected(&e))?;
                }
            }
        }
    }
    if rejected > 0 && !args.dry_run {
        report.finish()?;
        eprintln!(
            "{rejected} of {} rows refused; nothing was written (fix them and run again, or \
             preview with --dry-run)",
            valid + rejected
        );
        return Ok(ExitCode::FAILURE);
    }

    // Pass 2: upsert (or preview) each row, in file order.
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let principal = format!(
        "csv-import:{}",
        args.file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    );
    let ctx_for = |row: u64| {
        RequestCtx::new(
            Principal::new(
                tenant.clone(),
                principal.clone(),
                false,
                CredentialKind::StaticToken,
            ),
            // One request id per row: a create retried after an unknown outcome is recognised
            // by it, and two rows must never be mistaken for one another.
            Some(format!("import-{run_id}#row-{row}")),
            state
                .settings
                .public_url
                .clone()
                .unwrap_or_else(|| state.settings.base_path.clone()),
        )
    };
    let verb = if args.dry_run {
        "previewing"
    } else {
        "importing"
    };
    let mut progress = Progress::new(valid + rejected, verb, clock.clone());
    let mut tally = Tally::default();
    let mut rows = CsvRows::open(open_file()?, delimiter, &mapping, &state.registry, users)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    while let Some(row) = rows.next_row() {
        let line = match row {
            Err(e) => ReportLine::rejected(&e),
            Ok(row) => {
                let ctx = ctx_for(row.row);
                let done = if args.dry_run {
                    upsert::preview(&state, &ctx, row.user)
                        .await
                        .map(|o| (o, String::new()))
                } else {
                    upsert::apply(&state, &queue, &ctx, row.user)
                        .await
                        .map(|a| (a.outcome, a.id))
                };
                match done {
                    Ok((outcome, _id)) => ReportLine {
                        row: row.row,
                        employee_id: row.external_id,
                        outcome: outcome.as_str().into(),
                        column: String::new(),
                        error: String::new(),
                    },
                    Err(e) if e.status() < 500 => ReportLine {
                        row: row.row,
                        employee_id: row.external_id,
                        outcome: Outcome::Failed.as_str().into(),
                        column: String::new(),
                        error: format!("{} {}", e.status(), e.detail()),
                    },
                    Err(e) => {
                        report.finish()?;
                        anyhow::bail!(
                            "row {}: {} {} — stopped; rows before it are written, and running \
                             the import again is safe (rows are upserts)",
                            row.row,
                            e.status(),
                            e.detail()
                        );
                    }
                }
            }
        };
        if line.outcome == Outcome::Failed.as_str() {
            eprintln!("row {}: {}", line.row, line.error);
        }
        tally.count(&line.outcome);
        report.write(&line)?;
        progress.step();
    }
    progress.finish();
    report.finish()?;
    print_summary(&tally, args.dry_run);
    Ok(if tally.failed + tally.rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_summary(t: &Tally, dry_run: bool) {
    let (would, done) = if dry_run {
        ("would be ", "dry run: nothing was written")
    } else {
        ("", "import finished")
    };
    println!("{done}");
    println!("rows: {}", t.rows);
    println!("{would}created: {}", t.created);
    println!("{would}updated: {}", t.updated);
    println!("{would}unchanged: {}", t.unchanged);
    println!(
        "{}: {}",
        if dry_run { "would fail" } else { "failed" },
        t.failed
    );
    println!("rejected: {}", t.rejected);
}
