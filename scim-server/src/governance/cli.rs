//! `scim-server governance …`: the same service functions as `/governance/v1`, for operators.
//! Reads the same configuration as `serve` (`[governance]`, `[graph]`, `database_url`); prints
//! JSON.
//!
//! ```text
//! scim-server governance review create --file SPEC.json [--tenant T]
//! scim-server governance review list [--tenant T]
//! scim-server governance review show ID [--tenant T]
//! scim-server governance review items ID [--reviewer R] [--undecided] [--tenant T]
//! scim-server governance review decide ID ITEM (--keep | --revoke) --justification TEXT [--tenant T]
//! scim-server governance review apply ID [--tenant T]
//! scim-server governance exceptions list [--user ID] [--all] [--tenant T]
//! scim-server governance exceptions remove ID [--tenant T]
//! scim-server governance events [--subject ID] [--tenant T]
//! scim-server governance run [--until-idle]
//! ```

use super::{Governance, open_governance, reviews};
use crate::bridge::{BridgeContext, graph_config};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use anyhow::Context;
use clap::Subcommand;
use scim_core::schema::SchemaRegistry;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// `governance` subcommands.
#[derive(Debug, Subcommand)]
pub enum GovernanceCommand {
    /// Access review campaigns.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// Review exceptions (revoked grants the rules still derive).
    #[command(subcommand)]
    Exceptions(ExceptionsCommand),
    /// The governance event record, oldest first.
    Events {
        /// Only this review's or exception's.
        #[arg(long)]
        subject: Option<String>,
        /// The tenant (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Time-bound (just-in-time) grants.
    #[command(subcommand)]
    Grant(super::cli_access::GrantCommand),
    /// The hygiene report: stale, orphaned and drifted accounts, privileged role holders.
    Hygiene(super::cli_access::HygieneArgs),
    /// Leaver evidence: export a period, verify the stored records.
    #[command(subcommand)]
    Evidence(super::cli_access::EvidenceCommand),
    /// Run the governance schedule (review starts, reminders, due dates) without the HTTP server.
    Run {
        /// Run what is due now and exit (instead of running until SIGTERM or Ctrl-C).
        #[arg(long)]
        until_idle: bool,
    },
}

/// `governance review` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Create a campaign from a JSON file (the body of `POST /governance/v1/reviews`).
    Create {
        /// The campaign as JSON.
        #[arg(long)]
        file: std::path::PathBuf,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List campaigns, newest first.
    List {
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show one campaign.
    Show {
        /// The review id.
        id: String,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// A campaign's items.
    Items {
        /// The review id.
        id: String,
        /// Only this reviewer's.
        #[arg(long)]
        reviewer: Option<String>,
        /// Only undecided items.
        #[arg(long)]
        undecided: bool,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Decide one item.
    Decide {
        /// The review id.
        id: String,
        /// The item id.
        item: String,
        /// Keep the access.
        #[arg(long, conflicts_with = "revoke", required_unless_present = "revoke")]
        keep: bool,
        /// Revoke it.
        #[arg(long)]
        revoke: bool,
        /// Why (required).
        #[arg(long)]
        justification: String,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Close the campaign now (undecided items take the default) and apply its decisions.
    Apply {
        /// The review id.
        id: String,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// `governance exceptions` subcommands.
#[derive(Debug, Subcommand)]
pub enum ExceptionsCommand {
    /// List exceptions, newest first.
    List {
        /// Only this SCIM user's.
        #[arg(long)]
        user: Option<String>,
        /// Removed ones too.
        #[arg(long)]
        all: bool,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove an exception (kept on record); the user is queued for the bridge.
    Remove {
        /// The exception id.
        id: String,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// Opens governance for a command: the store (migrated), the bridge when `[graph]` is set.
pub async fn open(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Governance>> {
    let store = crate::server::open_store(&config.database_url).await?;
    store.migrate().await.context("applying migrations")?;
    let registry = Arc::new(SchemaRegistry::builtin());
    let bridge = match graph_config(config)? {
        Some(graph) => Some(
            BridgeContext::open(
                &graph,
                &config.database_url,
                store.clone(),
                registry.clone(),
                clock.clone(),
            )
            .await?,
        ),
        None => None,
    };
    open_governance(config, store, registry, bridge, clock)
        .await?
        .context("governance is off (`[governance] enabled = false`, or an in-memory database)")
}

/// Runs a `governance` subcommand, printing to standard output.
pub async fn run(command: GovernanceCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let gov = open(config, Arc::new(SystemClock)).await?;
    execute(command, config, &gov, &mut std::io::stdout()).await
}

fn print(out: &mut (dyn Write + Send), v: &impl serde::Serialize) -> anyhow::Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}

fn fail(e: scim_core::Error) -> anyhow::Error {
    anyhow::anyhow!("{} ({})", e.detail(), e.status())
}

/// Runs a subcommand on an opened [`Governance`], printing to `out` (testable in-process).
pub async fn execute(
    command: GovernanceCommand,
    config: &Config,
    gov: &Governance,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let tenant = |t: Option<String>| t.unwrap_or_else(|| config.default_tenant.clone());
    const ACTOR: &str = "cli";
    match command {
        GovernanceCommand::Review(cmd) => match cmd {
            ReviewCommand::Create { file, tenant: t } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let spec = serde_json::from_str(&text)
                    .with_context(|| format!("{}: not a valid campaign", file.display()))?;
                let r = reviews::create(gov, &tenant(t), ACTOR, spec)
                    .await
                    .map_err(fail)?;
                print(out, &r)?;
            }
            ReviewCommand::List { tenant: t } => {
                print(out, &reviews::list(gov, &tenant(t)).await.map_err(fail)?)?;
            }
            ReviewCommand::Show { id, tenant: t } => {
                print(
                    out,
                    &reviews::get(gov, &tenant(t), &id).await.map_err(fail)?,
                )?;
            }
            ReviewCommand::Items {
                id,
                reviewer,
                undecided,
                tenant: t,
            } => {
                let items = reviews::items(gov, &tenant(t), &id, reviewer.as_deref(), undecided)
                    .await
                    .map_err(fail)?;
                print(out, &items)?;
            }
            ReviewCommand::Decide {
                id,
                item,
                keep,
                revoke: _,
                justification,
                tenant: t,
            } => {
                let d = reviews::DecisionRequest {
                    item_id: Some(item),
                    decision: if keep { "keep" } else { "revoke" }.into(),
                    justification,
                };
                let r = reviews::decide(gov, &tenant(t), &id, ACTOR, vec![d])
                    .await
                    .map_err(fail)?;
                print(out, &r)?;
            }
            ReviewCommand::Apply { id, tenant: t } => {
                let r = reviews::apply(gov, &tenant(t), &id, ACTOR)
                    .await
                    .map_err(fail)?;
                let failed = r.counts.failed;
                print(out, &r)?;
                if failed > 0 {
                    eprintln!(
                        "{failed} item(s) could not be applied; run `apply` again to retry them"
                    );
                    return Ok(ExitCode::FAILURE);
                }
            }
        },
        GovernanceCommand::Exceptions(cmd) => match cmd {
            ExceptionsCommand::List {
                user,
                all,
                tenant: t,
            } => {
                let list = reviews::exceptions(gov, &tenant(t), user.as_deref(), all)
                    .await
                    .map_err(fail)?;
                print(out, &list)?;
            }
            ExceptionsCommand::Remove { id, tenant: t } => {
                let x = reviews::remove_exception(gov, &tenant(t), &id, ACTOR)
                    .await
                    .map_err(fail)?;
                print(out, &x)?;
            }
        },
        GovernanceCommand::Events { subject, tenant: t } => {
            let events = super::events(gov, &tenant(t), subject.as_deref())
                .await
                .map_err(fail)?;
            print(out, &events)?;
        }
        GovernanceCommand::Grant(cmd) => {
            return super::cli_access::grant(cmd, &config.default_tenant, gov, out).await;
        }
        GovernanceCommand::Hygiene(args) => {
            return super::cli_access::hygiene(args, &config.default_tenant, gov, out).await;
        }
        GovernanceCommand::Evidence(cmd) => {
            return super::cli_access::evidence(cmd, &config.default_tenant, gov, out).await;
        }
        GovernanceCommand::Run { until_idle } => {
            let owner = format!("cli-{}", uuid::Uuid::new_v4().simple());
            if until_idle {
                let stats = super::schedule::run_due(gov, &owner, 1000).await?;
                print(out, &stats)?;
            } else {
                let poll = std::time::Duration::from_secs(gov.config.poll_interval_seconds);
                let shutdown = crate::server::shutdown_signal();
                tokio::pin!(shutdown);
                loop {
                    if let Err(e) = super::schedule::run_due(gov, &owner, 100).await {
                        tracing::warn!(error = %e, "governance schedule pass failed");
                    }
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = gov.clock.sleep(poll) => {}
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
