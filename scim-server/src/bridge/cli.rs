//! `scim-server bridge …`: the Graph bridge's commands. They read the same configuration file and
//! `SCIM_*` / `SCIM_GRAPH_*` environment as `serve`. The top-level `cli` dispatches here; nothing
//! here reaches back into it.
//!
//! ```text
//! scim-server bridge run [--until-idle]
//! scim-server bridge plan --user ID [--tenant T]
//! scim-server bridge status [--json]
//! scim-server bridge reconcile (--all | --user ID) [--tenant T]
//! scim-server bridge dead-letters list [--tenant T] [--json]
//! scim-server bridge dead-letters retry (ID | --all)
//! scim-server bridge hold list [--tenant T] [--all] [--json]
//! scim-server bridge hold approve (ID... | --all) [--tenant T] [--by NAME]
//! scim-server bridge hold reject (ID... | --all) [--tenant T] [--by NAME]
//! ```

use super::{BridgeContext, StoreDirectory, graph_config, open_bridge_store, run_until_idle};
use crate::config::Config;
use anyhow::Context;
use clap::Subcommand;
use scim_core::schema::SchemaRegistry;
use scim_graph_bridge::clock::{Clock, SystemClock};
use scim_graph_bridge::config::GraphConfig;
use scim_graph_bridge::directory::UserDirectory;
use scim_graph_bridge::store::BridgeStore;
use scim_graph_bridge::worker;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// `bridge` subcommands.
#[derive(Debug, Subcommand)]
pub enum BridgeCommand {
    /// Run the bridge worker without the HTTP server (several workers may share one PostgreSQL
    /// database; each user is leased to one worker at a time).
    Run {
        /// Work off what is due, print the counts and exit (instead of running until SIGTERM or
        /// Ctrl-C).
        #[arg(long)]
        until_idle: bool,
    },
    /// Compute the plan for one user, record it and print it as JSON; nothing is applied (in
    /// apply mode Graph is read, never written).
    Plan {
        /// The SCIM user id.
        #[arg(long)]
        user: String,
        /// The tenant (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show the queue, dead letters, recorded plans and the outbox position of every tenant.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Queue users for reconciliation (after a rules change): a running worker picks them up.
    Reconcile {
        /// Every user (of `--tenant`, or of every tenant).
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        all: bool,
        /// One SCIM user id.
        #[arg(long)]
        user: Option<String>,
        /// The tenant (default: every tenant with `--all`, the default tenant with `--user`).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Work items that failed permanently or too often.
    #[command(subcommand)]
    DeadLetters(DeadLettersCommand),
    /// Leaver plans the mass-change guard (`[graph.guard]`) holds for an operator.
    #[command(subcommand)]
    Hold(HoldCommand),
}

/// `bridge hold` subcommands.
#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// List held leaver plans, oldest first.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Every hold, decided ones included (approved, applied, rejected, superseded).
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Approve held plans: their users are queued again and the worker applies their leaver
    /// plans (computed afresh).
    Approve(HoldDecision),
    /// Reject held plans: they are never applied (the SCIM records stay as they are); the
    /// decision is recorded.
    Reject(HoldDecision),
}

/// Which holds a decision concerns, and who decides.
#[derive(Debug, clap::Args)]
pub struct HoldDecision {
    /// Hold ids (from `bridge hold list`).
    #[arg(conflicts_with = "all", required_unless_present = "all")]
    pub ids: Vec<String>,
    /// Every pending hold (of `--tenant`, or of every tenant).
    #[arg(long)]
    pub all: bool,
    /// Only this tenant's (with `--all`).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Who decides, recorded with the decision (default: `$USER`).
    #[arg(long)]
    pub by: Option<String>,
}

/// `bridge dead-letters` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List dead letters, oldest first.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back on the queue, due now.
    Retry {
        /// The dead letter's id (from `dead-letters list`).
        #[arg(conflicts_with = "all", required_unless_present = "all")]
        id: Option<String>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
    },
}

/// Runs a `bridge` subcommand with the process environment's `SCIM_GRAPH_*` overrides, printing
/// to standard output.
pub async fn run(command: BridgeCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let graph = graph_config(config)?.context(
        "the Graph bridge is not configured: add a [graph] section to the configuration file \
         (or set SCIM_GRAPH_* variables)",
    )?;
    execute(
        command,
        config,
        &graph,
        Arc::new(SystemClock),
        &mut std::io::stdout(),
    )
    .await
}

/// Runs a `bridge` subcommand with an explicit `[graph]` configuration and clock, printing to
/// `out` (what [`run`] does, testable in-process).
pub async fn execute(
    command: BridgeCommand,
    config: &Config,
    graph: &GraphConfig,
    clock: Arc<dyn Clock>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let store = crate::server::open_store(&config.database_url).await?;
    store.migrate().await.context("applying migrations")?;
    let registry = Arc::new(SchemaRegistry::builtin());
    match command {
        BridgeCommand::Run { until_idle } => {
            let callbacks =
                crate::inbound::callback::Callbacks::open(config, true, clock.clone()).await?;
            let ctx = BridgeContext::open(graph, &config.database_url, store, registry, clock)
                .await?
                .with_callbacks(callbacks);
            let worker = ctx.worker(ctx.worker_config());
            if until_idle {
                let s = run_until_idle(&worker, 1_000_000).await?;
                writeln!(
                    out,
                    "mode: {}\ningested: {}\nreconciled: {}\nretrying: {}\ndead-lettered: {}\nheld: {}",
                    mode_name(graph),
                    s.ingested,
                    s.completed,
                    s.retried,
                    s.dead_lettered,
                    s.held
                )?;
            } else {
                tracing::info!(mode = mode_name(graph), "Graph bridge worker running");
                worker
                    .run(crate::server::shutdown_signal())
                    .await
                    .context("Graph bridge worker")?;
            }
        }
        BridgeCommand::Plan { user, tenant } => {
            let tenant = tenant.unwrap_or_else(|| config.default_tenant.clone());
            let ctx =
                BridgeContext::open(graph, &config.database_url, store, registry, clock).await?;
            if ctx.directory.get_user(&tenant, &user).await?.is_none() {
                eprintln!("note: no user {user:?} in tenant {tenant:?}; it is planned as a leaver");
            }
            let plan = worker::plan_for_user(
                &ctx.store,
                &ctx.bridge,
                ctx.directory.as_ref(),
                &tenant,
                &user,
            )
            .await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&plan)?)?;
        }
        BridgeCommand::Status { json } => {
            let bridge_store = open_bridge_store(&config.database_url).await?;
            let log = super::change_log(&bridge_store);
            let status = worker::status(&bridge_store, log.as_ref()).await?;
            if json {
                let mut value = serde_json::to_value(&status)?;
                value["mode"] = mode_name(graph).into();
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                writeln!(out, "mode: {}", mode_name(graph))?;
                writeln!(
                    out,
                    "pending: {} (leased {}, retrying {})",
                    status.pending, status.leased, status.retrying
                )?;
                writeln!(out, "dead letters: {}", status.dead_letters)?;
                writeln!(
                    out,
                    "held by the mass-change guard: {}{}",
                    status.held,
                    if status.held > 0 {
                        " (scim-server bridge hold list)"
                    } else {
                        ""
                    }
                )?;
                writeln!(out, "plans recorded: {}", status.plans)?;
                for c in &status.cursors {
                    writeln!(
                        out,
                        "outbox {:?}: consumed {} of {}",
                        c.tenant_id, c.last_seq, c.head_seq
                    )?;
                }
            }
        }
        BridgeCommand::Reconcile { all, user, tenant } => {
            let bridge_store = open_bridge_store(&config.database_url).await?;
            let directory = StoreDirectory::new(store.clone(), registry);
            let now = clock.now();
            if all {
                let tenants = match tenant {
                    Some(t) => vec![t],
                    None => store
                        .list_tenants()
                        .await?
                        .into_iter()
                        .map(|t| t.id)
                        .collect(),
                };
                for t in tenants {
                    let n = worker::reconcile_all(&bridge_store, &directory, &t, now).await?;
                    writeln!(out, "tenant {t:?}: {n} users queued")?;
                }
            } else if let Some(user) = user {
                let tenant = tenant.unwrap_or_else(|| config.default_tenant.clone());
                if directory.get_user(&tenant, &user).await?.is_none() {
                    eprintln!(
                        "note: no user {user:?} in tenant {tenant:?}; it is reconciled as a leaver"
                    );
                }
                bridge_store.enqueue(&tenant, &user, now).await?;
                writeln!(out, "user {user:?} of tenant {tenant:?} queued")?;
            }
        }
        BridgeCommand::DeadLetters(cmd) => {
            let bridge_store = open_bridge_store(&config.database_url).await?;
            return dead_letters(cmd, &bridge_store, clock.as_ref(), out).await;
        }
        BridgeCommand::Hold(cmd) => {
            let bridge_store = open_bridge_store(&config.database_url).await?;
            let callbacks =
                crate::inbound::callback::Callbacks::open(config, true, clock.clone()).await?;
            return super::hold::run(cmd, &bridge_store, callbacks, clock.as_ref(), out).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn dead_letters(
    command: DeadLettersCommand,
    store: &BridgeStore,
    clock: &dyn Clock,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    match command {
        DeadLettersCommand::List { tenant, json } => {
            let letters = worker::dead_letters(store, tenant.as_deref()).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&letters)?)?;
            } else {
                writeln!(
                    out,
                    "{:<36} {:<16} {:<36} {:>8} {:<20} reason",
                    "id", "tenant", "user", "attempts", "created"
                )?;
                for d in letters {
                    writeln!(
                        out,
                        "{:<36} {:<16} {:<36} {:>8} {:<20} {}",
                        d.id,
                        d.tenant_id,
                        d.user_id,
                        d.attempts,
                        scim_core::resource::format_datetime(d.created_at),
                        d.reason
                    )?;
                }
            }
        }
        DeadLettersCommand::Retry { id, all } => {
            let ids = match (id, all) {
                (Some(id), _) => vec![id],
                (None, _) => worker::dead_letters(store, None)
                    .await?
                    .into_iter()
                    .map(|d| d.id)
                    .collect(),
            };
            let mut missing = false;
            for id in ids {
                if worker::retry_dead_letter(store, &id, clock.now()).await? {
                    writeln!(out, "dead letter {id} queued again")?;
                } else {
                    eprintln!("no dead letter {id}");
                    missing = true;
                }
            }
            if missing {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn mode_name(graph: &GraphConfig) -> &'static str {
    match graph.effective_mode() {
        scim_graph_bridge::config::Mode::Plan => "plan",
        scim_graph_bridge::config::Mode::Apply => "apply",
    }
}
