//! `scim-server inbound status | dead-letters list | dead-letters retry ID`.

use super::open_queue;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use anyhow::Context;
use clap::Subcommand;
use std::io::Write;
use std::process::ExitCode;

/// `inbound` subcommands.
#[derive(Debug, Subcommand)]
pub enum InboundCommand {
    /// Jobs waiting, running and dead-lettered, and the age of the oldest unfinished job.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Jobs given up after the configured attempts.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
}

/// `inbound dead-letters` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters (oldest first).
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Queue a dead letter again (its finished records are not applied twice).
    Retry {
        /// The job id (from `list`).
        id: String,
    },
}

/// Runs an `inbound` subcommand.
pub async fn run(command: InboundCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let store = crate::server::open_store(&config.database_url).await?;
    store.migrate().await.context("applying migrations")?;
    let queue = open_queue(&config.database_url).await?;
    let now = SystemClock.now();
    let mut out = std::io::stdout().lock();
    match command {
        InboundCommand::Status { json } => {
            let s = queue.status(now).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
            } else {
                writeln!(out, "queued: {}", s.queued)?;
                writeln!(out, "running: {}", s.running)?;
                writeln!(out, "scheduled (future effective dates): {}", s.scheduled)?;
                writeln!(out, "dead letters: {}", s.dead)?;
                writeln!(out, "oldest unfinished job: {:.0} s", s.oldest_age_seconds)?;
            }
        }
        InboundCommand::DeadLetters(DeadLetterCommand::List { tenant, json }) => {
            let jobs = queue
                .jobs_in(super::queue::status::DEAD, tenant.as_deref(), 1000)
                .await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&jobs)?)?;
            } else if jobs.is_empty() {
                writeln!(out, "no dead letters")?;
            } else {
                for j in jobs {
                    writeln!(
                        out,
                        "{}  tenant {:?}  attempts {}  {}",
                        j.id,
                        j.tenant,
                        j.attempts,
                        j.last_error.unwrap_or_default()
                    )?;
                }
            }
        }
        InboundCommand::DeadLetters(DeadLetterCommand::Retry { id }) => {
            if queue.requeue_dead(&id, now).await? {
                writeln!(out, "job {id} queued again")?;
            } else {
                eprintln!("error: no dead letter {id:?}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
