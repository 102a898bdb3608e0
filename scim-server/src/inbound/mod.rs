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
pub mod mapping;
pub mod queue;
pub mod request;
pub mod signature;
pub mod upsert;
pub mod worker;

use crate::store::side_pool::{SidePool, open_side_pool};
use anyhow::Context;
use serde::{Deserialize, Serialize};
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
    wake: Notify,
}

impl Intake {
    /// An intake over `queue` (without event sources).
    pub fn new(queue: Queue, config: InboundConfig) -> Self {
        Self {
            queue,
            config,
            sources: Vec::new(),
            wake: Notify::new(),
        }
    }

    /// Accepts HR events from `sources`.
    pub fn with_sources(mut self, sources: Vec<events::Source>) -> Self {
        self.sources = sources;
        self
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
        principal: ctx.principal.id.clone(),
        request_id: ctx.request_id.clone(),
        source: "bulkUpload".into(),
        operations,
    };
    intake.queue.enqueue(&job, state.clock.now()).await?;
    tracing::info!(job_id = %job.id, operations = job.operations.len(), "bulkUpload job queued");
    intake.notify();
    Ok(job.id)
}

/// `GET /inbound/v1/jobs/{id}`: a job of the caller's tenant with its per-record outcomes.
pub async fn job(
    state: &crate::state::AppState,
    ctx: &crate::service::RequestCtx,
    id: &str,
) -> scim_core::Result<queue::JobView> {
    let intake = intake_of(state)?;
    intake
        .queue
        .job(ctx.tenant(), id)
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
    let queue = open_queue(&config.database_url).await?;
    Ok(Some(std::sync::Arc::new(
        Intake::new(queue, config.inbound.clone()).with_sources(sources),
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
