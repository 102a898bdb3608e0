//! The Microsoft Graph bridge wired into the server: `scim_graph_bridge` on the server's
//! database and store.
//!
//! - [`StoreDirectory`]: the bridge's [`UserDirectory`] over the server's [`Store`] (a user's SCIM
//!   JSON as the API returns it, ids paged in ascending order);
//! - [`BridgeContext`]: the bridge (rules and, in apply mode, a Graph client, planning with the
//!   governance overrides: review exceptions), its tables and the directory, opened from the
//!   `[graph]` section and the server's `database_url`;
//! - [`BackgroundWorker`]: the worker `serve` runs next to the HTTP server when `[graph]` is
//!   configured, stopped gracefully after the server has drained;
//! - [`HostEvents`]: what the worker's outcomes become here (guard alerts on `/metrics`, outcome
//!   callbacks);
//! - [`cli`]: `scim-server bridge run | plan | status | reconcile | dead-letters | hold`.
//!
//! Invariants:
//! - The bridge is a separate consumer of the change log: it reads typed entries through
//!   [`StoreChangeLog`] (the bridge's [`OutboxReader`] seam; no bridge code names `scim_changes`),
//!   opens its own connection pool from the same `database_url` and never writes the server's
//!   tables (only its `bridge_*` tables, created by its own migrations at start).
//! - Plan or apply is decided by the bridge crate ([`GraphConfig::effective_mode`]): plan mode,
//!   the default until credentials are configured, makes no Graph call at all.
//! - Without a `[graph]` section (and no `SCIM_GRAPH_*` variable) nothing here runs.

pub mod cli;
mod directory;
mod events;
mod hold;

use crate::config::Config;
use crate::inbound::callback::Callbacks;
use crate::store::Store;
use crate::store::change_log::StoreChangeLog;
use crate::store::side_pool::{SidePool, open_side_pool};
use anyhow::Context;
use scim_core::schema::SchemaRegistry;
use scim_graph_bridge::clock::{Clock, SystemClock};
use scim_graph_bridge::config::GraphConfig;
use scim_graph_bridge::directory::UserDirectory;
use scim_graph_bridge::outbox::OutboxReader;
use scim_graph_bridge::reconcile::Bridge;
use scim_graph_bridge::store::BridgeStore;
use scim_graph_bridge::worker::{RoundStats, Worker, WorkerConfig};
use std::sync::Arc;
use std::time::Duration;

pub use directory::StoreDirectory;
pub use events::HostEvents;

/// The `[graph]` section with `SCIM_GRAPH_*` overrides from the process environment, validated;
/// `None` when the bridge is not configured.
pub fn graph_config(config: &Config) -> anyhow::Result<Option<GraphConfig>> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    Ok(config.graph_config(&env)?)
}

/// Opens a connection pool of its own on the server's database (`sqlite://…` or
/// `postgres://…`) for the bridge's tables, and applies the bridge's migrations.
///
/// An in-memory SQLite database is refused: it is private to the pool that opened it, so the
/// bridge could not see the server's outbox.
pub async fn open_bridge_store(database_url: &str) -> anyhow::Result<BridgeStore> {
    let store = match open_side_pool(database_url, "the Graph bridge").await? {
        SidePool::Postgres(pool) => BridgeStore::Postgres(pool),
        SidePool::Sqlite(pool) => BridgeStore::Sqlite(pool),
    };
    store
        .migrate()
        .await
        .context("applying the Graph bridge's migrations")?;
    Ok(store)
}

/// The server's change log over the bridge's own pool (the same database).
pub fn change_log(bridge_store: &BridgeStore) -> Arc<dyn OutboxReader> {
    Arc::new(match bridge_store {
        BridgeStore::Sqlite(pool) => StoreChangeLog::sqlite(pool.clone()),
        BridgeStore::Postgres(pool) => StoreChangeLog::postgres(pool.clone()),
    })
}

/// Everything the bridge needs, opened once: the reconciler, its tables and the user directory.
#[derive(Clone)]
pub struct BridgeContext {
    /// The effective `[graph]` configuration.
    pub graph: GraphConfig,
    /// Rules plus, in apply mode, the Graph client.
    pub bridge: Bridge,
    /// The bridge's tables in the server's database.
    pub store: BridgeStore,
    /// The server's change log, which the worker consumes.
    pub change_log: Arc<dyn OutboxReader>,
    /// The SCIM users, read through the server's store.
    pub directory: Arc<dyn UserDirectory>,
    /// Where the worker reports settled plans and guard alerts.
    pub events: HostEvents,
}

impl std::fmt::Debug for BridgeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeContext")
            .field("mode", &self.bridge.mode())
            .field("graph", &self.graph)
            .finish_non_exhaustive()
    }
}

impl BridgeContext {
    /// Builds the bridge from `graph` (loads and checks the rules file; a Graph client only in
    /// apply mode), opens its pool on `database_url` and applies its migrations. `store` must be
    /// the server's store on the same database.
    pub async fn open(
        graph: &GraphConfig,
        database_url: &str,
        store: Arc<dyn Store>,
        registry: Arc<SchemaRegistry>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let bridge = Bridge::from_config(graph, clock).context("`[graph]`")?;
        let bridge_store = open_bridge_store(database_url).await?;
        // Review exceptions (and time-bound grants) from the governance tables, which the
        // server's migrations created: the planner honours them.
        let overrides = crate::governance::overrides::GovernanceOverrides::new(
            crate::governance::store::open(database_url).await?,
        );
        let bridge = bridge.with_overrides(Arc::new(overrides));
        Ok(Self {
            graph: graph.clone(),
            bridge,
            change_log: change_log(&bridge_store),
            store: bridge_store,
            directory: Arc::new(StoreDirectory::new(store, registry)),
            events: HostEvents::default(),
        })
    }

    /// Reports the worker's outcomes to `callbacks` too.
    pub fn with_callbacks(mut self, callbacks: Option<Arc<Callbacks>>) -> Self {
        self.events = HostEvents::new(callbacks);
        self
    }

    /// Worker settings from the `[graph]` section (attempts before a dead letter) and defaults.
    pub fn worker_config(&self) -> WorkerConfig {
        WorkerConfig::from_graph_config(&self.graph)
    }

    /// A worker over this context, reporting to [`BridgeContext::events`].
    pub fn worker(&self, cfg: WorkerConfig) -> Worker {
        Worker::new(
            self.store.clone(),
            self.change_log.clone(),
            self.bridge.clone(),
            self.directory.clone(),
            cfg,
        )
        .with_events(Arc::new(self.events.clone()))
    }
}

/// Runs rounds until one claims nothing (the queue is drained of due work), at most
/// `max_rounds`; returns the summed counts. Errors of a round end the loop.
pub async fn run_until_idle(worker: &Worker, max_rounds: usize) -> anyhow::Result<RoundStats> {
    let mut total = RoundStats::default();
    for _ in 0..max_rounds {
        let s = worker.run_once().await.context("bridge worker round")?;
        total.ingested += s.ingested;
        total.claimed += s.claimed;
        total.completed += s.completed;
        total.retried += s.retried;
        total.dead_lettered += s.dead_lettered;
        total.held += s.held;
        if s.claimed == 0 {
            return Ok(total);
        }
    }
    anyhow::bail!("the bridge queue was still busy after {max_rounds} rounds")
}

/// How often the background worker's status is published as metrics.
const OUTBOX_METRICS_INTERVAL: Duration = Duration::from_secs(5);

/// The bridge worker `serve` runs in the background (nothing when `[graph]` is absent).
#[derive(Debug, Default)]
pub struct BackgroundWorker {
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    grace: Duration,
}

impl BackgroundWorker {
    /// For `serve`: when the bridge is configured (`[graph]` or `SCIM_GRAPH_*`), opens it on the
    /// server's database (running its migrations) and starts its worker; otherwise does nothing.
    /// Errors (an invalid rules file, an unreachable database) stop the server from starting.
    pub async fn start(
        config: &Config,
        store: Arc<dyn Store>,
        registry: Arc<SchemaRegistry>,
        callbacks: Option<Arc<Callbacks>>,
    ) -> anyhow::Result<Self> {
        let Some(graph) = graph_config(config)? else {
            return Ok(Self::default());
        };
        let ctx = BridgeContext::open(
            &graph,
            &config.database_url,
            store,
            registry,
            Arc::new(SystemClock),
        )
        .await?
        .with_callbacks(callbacks);
        tracing::info!(mode = ?ctx.bridge.mode(), "Graph bridge worker starting");
        let cfg = ctx.worker_config();
        let worker = Self::spawn(
            ctx.worker(cfg),
            Duration::from_secs(config.shutdown_grace_seconds),
        );
        if let Some(running) = &worker.running {
            let mut stopped = running.stop.subscribe();
            let store = ctx.store.clone();
            let log = ctx.change_log.clone();
            // Outbox lag, pending work and dead letters on /metrics while the worker runs.
            tokio::spawn(async move {
                loop {
                    match store.status(log.as_ref()).await {
                        Ok(status) => crate::metrics::record_outbox(&status),
                        Err(e) => {
                            tracing::warn!(error = %e, "reading the bridge status for metrics")
                        }
                    }
                    tokio::select! {
                        _ = stopped.wait_for(|s| *s) => break,
                        () = tokio::time::sleep(OUTBOX_METRICS_INTERVAL) => {}
                    }
                }
            });
        }
        Ok(worker)
    }

    /// Runs `worker` on the runtime until [`BackgroundWorker::shutdown`].
    pub fn spawn(worker: Worker, grace: Duration) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = worker.run(shutdown).await {
                tracing::error!(error = %e, "Graph bridge worker stopped");
            }
        });
        Self {
            running: Some(Running { stop, task, grace }),
        }
    }

    /// Whether a worker is running.
    pub fn is_running(&self) -> bool {
        self.running.as_ref().is_some_and(|r| !r.task.is_finished())
    }

    /// Asks the worker to stop after its current round and waits for it up to the grace period;
    /// past that the task is aborted (its leases expire and another worker retakes the users;
    /// every step is idempotent).
    pub async fn shutdown(self) {
        let Some(Running {
            stop,
            mut task,
            grace,
        }) = self.running
        else {
            return;
        };
        let _ = stop.send(true);
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            tracing::warn!(
                seconds = grace.as_secs(),
                "Graph bridge worker still busy after the grace period; aborting it"
            );
            task.abort();
        }
        tracing::info!("Graph bridge worker stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bridge_store_opens_a_file_and_refuses_memory() {
        let err = open_bridge_store("sqlite::memory:").await.unwrap_err();
        assert!(err.to_string().contains("in-memory"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        let store = open_bridge_store(&url).await.unwrap();
        // a second opening finds the migrations applied
        open_bridge_store(&url).await.unwrap();
        assert!(store.dead_letters(None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn background_worker_without_graph_does_nothing() {
        let idle = BackgroundWorker::default();
        assert!(!idle.is_running());
        idle.shutdown().await;
    }
}
