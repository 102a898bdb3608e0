//! HR intake: Microsoft Entra's API-driven inbound provisioning format (`POST
//! /inbound/v1/bulkUpload`), turned into durable jobs that a worker applies through the service's
//! write functions.
//!
//! - [`request`]: the bulkUpload body checked and split into records (structure errors are a 400
//!   for the whole request; a record's own problems fail that record alone, later);
//! - [`queue`]: the `inbound_*` tables: enqueue in one transaction before answering 202, claim
//!   with a lease, retry with backoff and jitter, dead letters after `max_attempts`;
//! - [`upsert`]: one record applied as an upsert keyed on `externalId` (created, updated,
//!   unchanged: no write and no change record), managers named by employee id;
//! - [`worker`]: the loop `serve` runs (woken at once by an enqueue in the same process, else
//!   polling), and the queue's metrics;
//! - [`http`]: the handlers (`bulkUpload`, `jobs/{id}`); [`cli`]: `scim-server inbound …`.
//!
//! Invariants:
//! - a job answered with 202 is committed first, so it survives a crash (`kill -9`) and runs
//!   after the restart; a job whose worker died is taken again when its lease expires;
//! - resources are written only through [`crate::service::resources`], never by SQL here, so
//!   every write has its change record and the Graph bridge sees it;
//! - applying a record twice is the same as once (the upsert is idempotent), so at-least-once
//!   processing converges.

pub mod callback;
mod callback_delivery;
mod callback_store;
pub mod cli;
pub mod events;
pub mod http;
pub mod import;
pub mod import_cli;
pub mod mapping;
pub mod queue;
pub mod request;
pub mod signature;
pub mod upsert;
pub mod worker;

use crate::clock::{Clock, SystemClock};
use crate::ratelimit::Limit;
use crate::store::side_pool::{SidePool, open_side_pool};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub use queue::Queue;

/// `[inbound]`: the HR intake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundConfig {
    /// Serve `/inbound/v1/…` (`SCIM_INBOUND__ENABLED`).
    pub enabled: bool,
    /// Run the intake worker in `serve` (`SCIM_INBOUND__WORKER`); another replica may run it.
    pub worker: bool,
    /// Most operations in one bulkUpload request (Microsoft's limit is 50).
    pub max_operations: usize,
    /// Attempts at a job before it becomes a dead letter.
    pub max_attempts: u32,
    /// Seconds a worker holds a job between heartbeats; a job whose worker died is taken again
    /// after this.
    pub lease_seconds: u64,
    /// The first retry's delay in seconds; each further attempt doubles it (with jitter).
    pub backoff_base_seconds: u64,
    /// The longest retry delay in seconds.
    pub backoff_max_seconds: u64,
    /// Milliseconds between polls when idle (an enqueue in the same process wakes it at once).
    pub poll_interval_ms: u64,
    /// HR event sources (`[[inbound.sources]]`): who may post events, signed with which secrets,
    /// mapped by which file.
    pub sources: Vec<events::SourceConfig>,
    /// Mapping files CSV uploads may name (`[inbound.mappings]`: name = path), for every
    /// tenant; an upload may also name one of its tenant's event sources.
    pub mappings: BTreeMap<String, PathBuf>,
    /// Largest CSV upload in bytes (`POST /inbound/v1/imports`); bigger files go through
    /// `scim-server import`.
    pub max_import_bytes: usize,
    /// Days a finished job (and an event id) is kept before the upkeep task deletes it; dead
    /// letters are kept until retried.
    pub job_retention_days: u64,
    /// HR events accepted per second per source (sustained); a source over it is answered
    /// 429 with `Retry-After`. Only events whose signature verified count, so nobody without
    /// the secret can use up a source's allowance.
    pub events_per_second: u32,
    /// Events a source may send at once above the sustained rate.
    pub events_burst: u32,
    /// Outcome callbacks (`[[inbound.callbacks]]`): where each tenant's outcomes are POSTed.
    pub callbacks: Vec<callback::CallbackConfig>,
}

impl Default for InboundConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            worker: true,
            max_operations: 50,
            max_attempts: 5,
            lease_seconds: 60,
            backoff_base_seconds: 5,
            backoff_max_seconds: 600,
            poll_interval_ms: 1000,
            sources: Vec::new(),
            mappings: BTreeMap::new(),
            max_import_bytes: 32 << 20,
            job_retention_days: 30,
            events_per_second: 20,
            events_burst: 200,
            callbacks: Vec::new(),
        }
    }
}

impl InboundConfig {
    /// Checks values that parse but make no sense; errors name the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (key, value) in [
            ("inbound.max_operations", self.max_operations as u64),
            ("inbound.max_attempts", u64::from(self.max_attempts)),
            ("inbound.lease_seconds", self.lease_seconds),
            ("inbound.backoff_base_seconds", self.backoff_base_seconds),
            ("inbound.poll_interval_ms", self.poll_interval_ms),
            ("inbound.max_import_bytes", self.max_import_bytes as u64),
            ("inbound.job_retention_days", self.job_retention_days),
            (
                "inbound.events_per_second",
                u64::from(self.events_per_second),
            ),
            ("inbound.events_burst", u64::from(self.events_burst)),
        ] {
            if value == 0 {
                return Err(format!("`{key}`: must be greater than 0"));
            }
        }
        for (i, source) in self.sources.iter().enumerate() {
            source
                .check()
                .map_err(|why| format!("`inbound.sources[{i}]`: {why}"))?;
        }
        for name in self.mappings.keys() {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "`inbound.mappings.{name}`: a mapping name is letters, digits, `-` and `_`"
                ));
            }
        }
        callback::validate(&self.callbacks)?;
        if self.backoff_max_seconds < self.backoff_base_seconds {
            return Err(
                "`inbound.backoff_max_seconds`: must be at least `inbound.backoff_base_seconds`"
                    .into(),
            );
        }
        Ok(())
    }

    /// The lease a worker takes on a job.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }

    /// The delay before attempt `attempt + 1` after `attempt` failed: the base doubled per
    /// attempt, capped, then scaled by a jitter factor in [0.5, 1] (`jitter` in [0, 1)) so jobs
    /// that failed together do not all come back together.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let doubled = self
            .backoff_base_seconds
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30));
        let capped = doubled.min(self.backoff_max_seconds) as f64;
        Duration::from_secs_f64(capped * (0.5 + jitter.clamp(0.0, 1.0) / 2.0))
    }
}

/// The HR intake of one process: its queue, its settings, its event sources and the signal that
/// wakes the worker.
#[derive(Debug)]
pub struct Intake {
    /// The intake tables.
    pub queue: Queue,
    /// `[inbound]`.
    pub config: InboundConfig,
    sources: Vec<events::Source>,
    mappings: BTreeMap<String, mapping::Mapping>,
    event_limit: Limit<(String, String)>,
    wake: Notify,
}

impl Intake {
    /// An intake over `queue` (without event sources), its limits on the system clock.
    pub fn new(queue: Queue, config: InboundConfig) -> Self {
        let event_limit = Self::event_limit(&config, Arc::new(SystemClock));
        Self {
            queue,
            config,
            sources: Vec::new(),
            mappings: BTreeMap::new(),
            event_limit,
            wake: Notify::new(),
        }
    }

    fn event_limit(config: &InboundConfig, clock: Arc<dyn Clock>) -> Limit<(String, String)> {
        Limit::new(
            f64::from(config.events_per_second),
            config.events_burst,
            clock,
        )
    }

    /// Reads the time of its limits from `clock` (tests advance it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.event_limit = Self::event_limit(&self.config, clock);
        self
    }

    /// Accepts HR events from `sources`.
    pub fn with_sources(mut self, sources: Vec<events::Source>) -> Self {
        self.sources = sources;
        self
    }

    /// CSV uploads may name these mappings (`[inbound.mappings]`).
    pub fn with_mappings(mut self, mappings: BTreeMap<String, mapping::Mapping>) -> Self {
        self.mappings = mappings;
        self
    }

    /// The mapping `name` for a CSV upload of `tenant`: one of `[inbound.mappings]`, else the
    /// mapping of the tenant's event source `name`.
    pub fn mapping(&self, tenant: &str, name: &str) -> Option<&mapping::Mapping> {
        self.mappings
            .get(name)
            .or_else(|| self.source(tenant, name).map(|s| &s.mapping))
    }

    /// The names a CSV upload of `tenant` may give as its mapping: every `[inbound.mappings]`
    /// entry, then the tenant's event sources (whose mappings [`Intake::mapping`] also finds),
    /// each once, in that order.
    pub fn mapping_names(&self, tenant: &str) -> Vec<String> {
        let mut names: Vec<String> = self.mappings.keys().cloned().collect();
        for source in self.sources.iter().filter(|s| s.tenant == tenant) {
            if !names.contains(&source.name) {
                names.push(source.name.clone());
            }
        }
        names
    }

    /// Counts one verified event of `tenant`'s `source`; `Err(seconds)` when the source is over
    /// `inbound.events_per_second` (with `inbound.events_burst`).
    pub fn check_event_rate(&self, tenant: &str, source: &str) -> Result<(), u64> {
        self.event_limit
            .check(&(tenant.to_string(), source.to_string()))
    }

    /// Deletes finished jobs and event ids older than `inbound.job_retention_days` (run by the
    /// server's upkeep task).
    pub async fn purge(&self, now: time::OffsetDateTime) -> crate::store::Result<queue::Purged> {
        let days = i64::try_from(self.config.job_retention_days).unwrap_or(i64::MAX / 86_400);
        let before = now - time::Duration::days(days.min(365_000));
        self.queue.purge(before, 500).await
    }

    /// The event source `name` of `tenant`.
    pub fn source(&self, tenant: &str, name: &str) -> Option<&events::Source> {
        self.sources
            .iter()
            .find(|s| s.tenant == tenant && s.name == name)
    }

    /// Wakes this process's worker (a job was enqueued).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Waits for [`Intake::notify`] or `timeout`, whichever comes first.
    pub async fn wait(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.wake.notified()).await;
    }
}

/// Opens a pool of the intake's own on the server's database (whose migrations created the
/// `inbound_*` tables). An in-memory SQLite database is refused: it is private to the pool that
/// opened it.
pub async fn open_queue(database_url: &str) -> anyhow::Result<Queue> {
    Ok(match open_side_pool(database_url, "the HR intake").await? {
        SidePool::Postgres(pool) => Queue::Postgres(pool),
        SidePool::Sqlite(pool) => Queue::Sqlite(pool),
    })
}

/// The job resource's path, under the server's root.
pub const JOBS_PATH: &str = "/inbound/v1/jobs";

/// The caller's intake, or 503 when this server has none (an in-memory database, or
/// `[inbound] enabled = false`).
pub(crate) fn intake_of(state: &crate::state::AppState) -> scim_core::Result<&Intake> {
    state.inbound.as_deref().ok_or_else(|| {
        scim_core::Error::new(
            503,
            None,
            "the HR intake is not enabled on this server (`[inbound] enabled`, and a database \
             file or PostgreSQL in `database_url`)",
        )
    })
}

/// `POST /inbound/v1/bulkUpload`: checks the body, queues its records as one job (committed
/// before this returns) and wakes the worker. Returns the job id.
pub async fn accept_bulk_upload(
    state: &crate::state::AppState,
    ctx: &crate::service::RequestCtx,
    body: serde_json::Value,
) -> scim_core::Result<String> {
    ctx.require_write()?;
    let intake = intake_of(state)?;
    let operations = request::parse(body, intake.config.max_operations)?;
    let job = queue::NewJob {
        id: uuid::Uuid::new_v4().to_string(),
        tenant: ctx.tenant().to_string(),
        principal: ctx.principal().id().to_string(),
        request_id: ctx.request_id().map(str::to_string),
        source: "bulkUpload".into(),
        operations,
    };
    intake.queue.enqueue(&job, state.clock.now()).await?;
    tracing::info!(job_id = %job.id, operations = job.operations.len(), "bulkUpload job queued");
    intake.notify();
    Ok(job.id)
}

/// What an upload came to.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportReply {
    /// Every row passed its checks and was queued as this job.
    Queued(String),
    /// `dryRun`: what each row would do; nothing was written or queued.
    Preview(ImportPreview),
}

/// The preview of an upload (`dryRun=true`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportPreview {
    /// Rows per outcome.
    pub counts: import::Tally,
    /// Each row's outcome (`created`, `updated`, `unchanged`, `failed`, `rejected`).
    pub rows: Vec<import::ReportLine>,
}

/// Rows named in the refusal of an upload (the rest are counted).
const REFUSED_ROWS_SHOWN: usize = 10;

/// `POST /inbound/v1/imports`: a CSV file mapped by the mapping `mapping_name`. Every row is
/// checked first: when one is refused the upload is a 400 naming the rows and columns, and
/// nothing is queued. Otherwise the rows become one job (a record per row, `bulkId` = the row
/// number), applied by the worker like a bulkUpload; with `dry_run` each row is previewed
/// through the write pipeline's decision instead and nothing is written.
pub async fn accept_import(
    state: &crate::state::AppState,
    ctx: &crate::service::RequestCtx,
    mapping_name: &str,
    delimiter: Option<&str>,
    dry_run: bool,
    body: &[u8],
) -> scim_core::Result<ImportReply> {
    ctx.require_write()?;
    let intake = intake_of(state)?;
    let mapping = intake.mapping(ctx.tenant(), mapping_name).ok_or_else(|| {
        scim_core::Error::invalid_value(format!(
            "no mapping named {mapping_name:?}: name one of `[inbound.mappings]` or an HR event \
             source of this tenant"
        ))
    })?;
    let delimiter = import::delimiter(delimiter).map_err(scim_core::Error::invalid_value)?;
    let users = state
        .registry
        .resource_type(scim_core::schema::USER_RESOURCE)
        .ok_or_else(scim_core::Error::internal)?;
    let mut rows = import::CsvRows::open(body, delimiter, mapping, &state.registry, users)
        .map_err(|e| scim_core::Error::invalid_value(format!("{e}; nothing was queued")))?;
    let mut good = Vec::new();
    let mut refused = Vec::new();
    let mut lines = Vec::new();
    while let Some(row) = rows.next_row() {
        match row {
            Ok(row) => {
                lines.push(None);
                good.push(row);
            }
            Err(e) => {
                lines.push(Some(import::ReportLine::rejected(&e)));
                refused.push(e);
            }
        }
    }
    if dry_run {
        let mut previews = good.into_iter();
        let mut preview = ImportPreview {
            counts: import::Tally::default(),
            rows: Vec::with_capacity(lines.len()),
        };
        for line in lines {
            let line = match line {
                Some(rejected) => rejected,
                None => {
                    let Some(row) = previews.next() else { break };
                    let (outcome, error) = match upsert::preview(state, ctx, row.user).await {
                        Ok(o) => (o.as_str().to_string(), String::new()),
                        Err(e) if e.status() < 500 => (
                            queue::Outcome::Failed.as_str().to_string(),
                            format!("{} {}", e.status(), e.detail()),
                        ),
                        Err(e) => return Err(e),
                    };
                    import::ReportLine {
                        row: row.row,
                        employee_id: row.external_id,
                        outcome,
                        column: String::new(),
                        error,
                    }
                }
            };
            preview.counts.count(&line.outcome);
            preview.rows.push(line);
        }
        return Ok(ImportReply::Preview(preview));
    }
    if !refused.is_empty() {
        let shown: Vec<String> = refused
            .iter()
            .take(REFUSED_ROWS_SHOWN)
            .map(ToString::to_string)
            .collect();
        return Err(scim_core::Error::invalid_value(format!(
            "{} of {} rows refused; nothing was queued: {}{}",
            refused.len(),
            refused.len() + good.len(),
            shown.join("; "),
            if refused.len() > REFUSED_ROWS_SHOWN {
                " (preview with dryRun=true for every row)"
            } else {
                ""
            }
        )));
    }
    if good.is_empty() {
        return Err(scim_core::Error::invalid_value(
            "the file has a header but no rows; nothing was queued",
        ));
    }
    let job = queue::NewJob {
        id: uuid::Uuid::new_v4().to_string(),
        tenant: ctx.tenant().to_string(),
        principal: ctx.principal().id().to_string(),
        request_id: ctx.request_id().map(str::to_string),
        source: "csv".into(),
        operations: good
            .into_iter()
            .map(|row| queue::NewOperation {
                bulk_id: Some(row.row.to_string()),
                external_id: Some(row.external_id),
                data: row.user,
            })
            .collect(),
    };
    intake.queue.enqueue(&job, state.clock.now()).await?;
    tracing::info!(job_id = %job.id, rows = job.operations.len(), mapping = mapping_name, "CSV upload queued");
    intake.notify();
    Ok(ImportReply::Queued(job.id))
}

/// `GET /inbound/v1/jobs/{id}`: a job of the caller's tenant with its per-record outcomes (the
/// first [`queue::OPERATIONS_PAGE`]).
pub async fn job(
    state: &crate::state::AppState,
    ctx: &crate::service::RequestCtx,
    id: &str,
) -> scim_core::Result<queue::JobView> {
    job_page(state, ctx, id, 1, queue::OPERATIONS_PAGE).await
}

/// Most operations one job page shows.
pub const MAX_OPERATIONS_PAGE: u32 = 10_000;

/// [`job`], showing `count` (at most [`MAX_OPERATIONS_PAGE`]) records from `start_index`
/// (1-based).
pub async fn job_page(
    state: &crate::state::AppState,
    ctx: &crate::service::RequestCtx,
    id: &str,
    start_index: u64,
    count: u32,
) -> scim_core::Result<queue::JobView> {
    let intake = intake_of(state)?;
    intake
        .queue
        .job_page(
            ctx.tenant(),
            id,
            start_index,
            count.min(MAX_OPERATIONS_PAGE),
        )
        .await?
        .ok_or_else(|| scim_core::Error::not_found_detail(format!("no intake job {id}")))
}

/// For `serve`: the intake over the server's database, or `None` when `[inbound] enabled` is off
/// or the database is in memory (logged: the intake needs a database other pools can open).
pub async fn open_intake(
    config: &crate::config::Config,
) -> anyhow::Result<Option<std::sync::Arc<Intake>>> {
    if !config.inbound.enabled {
        return Ok(None);
    }
    let lower = config.database_url.to_ascii_lowercase();
    if lower.contains(":memory:") || lower.contains("mode=memory") {
        tracing::warn!(
            "HR intake off: it needs a database file or PostgreSQL, not an in-memory database"
        );
        return Ok(None);
    }
    let sources = config
        .inbound
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| s.load().with_context(|| format!("`inbound.sources[{i}]`")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mappings = config
        .inbound
        .mappings
        .iter()
        .map(|(name, path)| {
            let what = || format!("`inbound.mappings.{name}`: {}", path.display());
            let text = std::fs::read_to_string(path).with_context(what)?;
            let mapping = mapping::Mapping::parse(&text)
                .map_err(anyhow::Error::msg)
                .with_context(what)?;
            Ok((name.clone(), mapping))
        })
        .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
    let queue = open_queue(&config.database_url).await?;
    Ok(Some(std::sync::Arc::new(
        Intake::new(queue, config.inbound.clone())
            .with_sources(sources)
            .with_mappings(mappings),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let cfg = InboundConfig {
            backoff_base_seconds: 10,
            backoff_max_seconds: 100,
            ..InboundConfig::default()
        };
        // (failed attempt, jitter, delay in seconds)
        let cases = [
            (1, 0.0, 5.0),
            (1, 1.0, 10.0),
            (2, 0.0, 10.0),
            (2, 0.5, 15.0),
            (3, 1.0, 40.0),
            (5, 1.0, 100.0),
            (60, 0.0, 50.0),
            (0, 1.0, 10.0),
        ];
        for (attempt, jitter, want) in cases {
            let got = cfg.backoff(attempt, jitter).as_secs_f64();
            assert!((got - want).abs() < 1e-9, "{attempt} {jitter}: {got}");
        }
    }

    #[test]
    fn config_errors_name_the_key() {
        let bad = [
            (
                InboundConfig {
                    max_operations: 0,
                    ..InboundConfig::default()
                },
                "inbound.max_operations",
            ),
            (
                InboundConfig {
                    backoff_max_seconds: 1,
                    ..InboundConfig::default()
                },
                "inbound.backoff_max_seconds",
            ),
        ];
        for (cfg, key) in bad {
            assert!(cfg.validate().unwrap_err().contains(key));
        }
        assert!(InboundConfig::default().validate().is_ok());
    }
}
