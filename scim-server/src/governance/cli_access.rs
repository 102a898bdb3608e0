//! `scim-server governance grant | hygiene | evidence`: the same service functions as the API's
//! `/grants`, `/hygiene` and `/evidence`, for operators.
//!
//! ```text
//! scim-server governance grant request --user ID --grant role:NAME --duration PT4H --justification TEXT [--requested-by ID]
//! scim-server governance grant approve|deny ID --approver ID_OR_USERNAME [--note TEXT]
//! scim-server governance grant extend ID --duration PT2H --justification TEXT
//! scim-server governance grant revoke ID [--note TEXT]
//! scim-server governance grant list [--user ID] [--status S] | show ID
//! scim-server governance hygiene [--stale-days 90] [--convergence-minutes 60] [--format json|csv]
//! scim-server governance evidence export --from DATE --to DATE [--format json|csv|html] [--output FILE]
//! scim-server governance evidence verify
//! ```
//! Every command takes `--tenant T` (default: the configured default tenant).

use super::Governance;
use super::evidence;
use super::hygiene::{self, HygieneOptions};
use super::jit::{self, Decision, ExtendRequest, GrantFilter, GrantRequest, Revocation};
use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use std::io::Write;
use std::process::ExitCode;

/// `governance grant` subcommands.
#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Request a time-bound grant of a catalog group, role or license.
    Request {
        /// The SCIM user id (or userName) it is for.
        #[arg(long)]
        user: String,
        /// The catalog grant, `kind:name` (`role:helpdesk`, `group:eng`).
        #[arg(long)]
        grant: String,
        /// ISO 8601 duration, at most the policy's (`PT4H`).
        #[arg(long)]
        duration: String,
        /// Why the access is needed.
        #[arg(long)]
        justification: String,
        /// Who asks (default: the user).
        #[arg(long)]
        requested_by: Option<String>,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Approve a pending request.
    Approve {
        /// The grant id.
        id: String,
        /// The approver: the user's manager or one of the policy's approvers (id or userName).
        #[arg(long)]
        approver: String,
        /// A note.
        #[arg(long)]
        note: Option<String>,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Deny a pending request.
    Deny {
        /// The grant id.
        id: String,
        /// The approver.
        #[arg(long)]
        approver: String,
        /// A note.
        #[arg(long)]
        note: Option<String>,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Ask to extend an active grant (a new request, starting when it ends).
    Extend {
        /// The active grant's id.
        id: String,
        /// How much longer (ISO 8601).
        #[arg(long)]
        duration: String,
        /// Why.
        #[arg(long)]
        justification: String,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// End an active grant now, or withdraw a pending request.
    Revoke {
        /// The grant id.
        id: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List grants, newest first.
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// Only in this status (pending, active, denied, expired, revoked).
        #[arg(long)]
        status: Option<String>,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show one grant.
    Show {
        /// The grant id.
        id: String,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// Output formats of reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// JSON (pretty-printed).
    Json,
    /// CSV, one row per finding or Graph step.
    Csv,
    /// A printable HTML page (evidence only).
    Html,
}

/// `governance evidence` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Export the leaver evidence of a period (revocations completed from `--from` to `--to`).
    Export {
        /// Start (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// End, exclusive.
        #[arg(long)]
        to: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: ReportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Check every stored record against its digest and the change log's anchor; exit 1 on a
    /// problem.
    Verify {
        /// The tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// `governance hygiene` options.
#[derive(Debug, clap::Args)]
pub struct HygieneArgs {
    /// Days without a sign-in that make an active account stale.
    #[arg(long, default_value_t = 90)]
    pub stale_days: u32,
    /// Minutes the bridge gets before a difference counts as drift.
    #[arg(long, default_value_t = 60)]
    pub convergence_minutes: u32,
    /// Output format (json or csv).
    #[arg(long, value_enum, default_value = "json")]
    pub format: ReportFormat,
    /// The tenant.
    #[arg(long)]
    pub tenant: Option<String>,
}

fn fail(e: scim_core::Error) -> anyhow::Error {
    anyhow::anyhow!("{} ({})", e.detail(), e.status())
}

fn print(out: &mut (dyn Write + Send), v: &impl serde::Serialize) -> anyhow::Result<()> {
    writeln!(out, "{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}

const ACTOR: &str = "cli";

/// Runs `governance grant …`.
pub async fn grant(
    cmd: GrantCommand,
    default_tenant: &str,
    gov: &Governance,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let tenant = |t: Option<String>| t.unwrap_or_else(|| default_tenant.to_string());
    let g = match cmd {
        GrantCommand::Request {
            user,
            grant,
            duration,
            justification,
            requested_by,
            tenant: t,
        } => {
            let req = GrantRequest {
                user,
                grant,
                duration,
                justification,
                requested_by,
            };
            jit::request(gov, &tenant(t), ACTOR, req).await
        }
        GrantCommand::Approve {
            id,
            approver,
            note,
            tenant: t,
        } => jit::approve(gov, &tenant(t), ACTOR, &id, Decision { approver, note }).await,
        GrantCommand::Deny {
            id,
            approver,
            note,
            tenant: t,
        } => jit::deny(gov, &tenant(t), ACTOR, &id, Decision { approver, note }).await,
        GrantCommand::Extend {
            id,
            duration,
            justification,
            tenant: t,
        } => {
            let req = ExtendRequest {
                duration,
                justification,
            };
            jit::extend(gov, &tenant(t), ACTOR, &id, req).await
        }
        GrantCommand::Revoke {
            id,
            note,
            tenant: t,
        } => {
            let r = Revocation {
                by: Some(ACTOR.into()),
                note,
            };
            jit::revoke(gov, &tenant(t), ACTOR, &id, r).await
        }
        GrantCommand::List {
            user,
            status,
            tenant: t,
        } => {
            let list = jit::list(gov, &tenant(t), &GrantFilter { user, status })
                .await
                .map_err(fail)?;
            print(out, &list)?;
            return Ok(ExitCode::SUCCESS);
        }
        GrantCommand::Show { id, tenant: t } => jit::get(gov, &tenant(t), &id).await,
    };
    print(out, &g.map_err(fail)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `governance hygiene`.
pub async fn hygiene(
    args: HygieneArgs,
    default_tenant: &str,
    gov: &Governance,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let tenant = args.tenant.unwrap_or_else(|| default_tenant.to_string());
    let options = HygieneOptions {
        stale_days: args.stale_days,
        convergence_minutes: args.convergence_minutes,
    };
    let report = hygiene::report(gov, &tenant, options).await.map_err(fail)?;
    match args.format {
        ReportFormat::Csv => write!(out, "{}", hygiene::to_csv(&report))?,
        ReportFormat::Json => print(out, &report)?,
        ReportFormat::Html => anyhow::bail!("the hygiene report is JSON or CSV"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `governance evidence …`.
pub async fn evidence(
    cmd: EvidenceCommand,
    default_tenant: &str,
    gov: &Governance,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let tenant = |t: Option<String>| t.unwrap_or_else(|| default_tenant.to_string());
    match cmd {
        EvidenceCommand::Export {
            from,
            to,
            format,
            output,
            tenant: t,
        } => {
            let t = tenant(t);
            let from = super::http_access::parse_time("from", &from).map_err(fail)?;
            let to = super::http_access::parse_time("to", &to).map_err(fail)?;
            let records = evidence::export(gov, &t, from, to).await.map_err(fail)?;
            let text = match format {
                ReportFormat::Json => {
                    serde_json::to_string_pretty(&serde_json::json!({
                        "tenant": t, "from": evidence::rfc3339(from), "to": evidence::rfc3339(to),
                        "records": records,
                    }))? + "\n"
                }
                ReportFormat::Csv => evidence::to_csv(&records),
                ReportFormat::Html => evidence::to_html(&t, from, to, &records),
            };
            match output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => write!(out, "{text}")?,
            }
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Verify { tenant: t } => {
            let t = tenant(t);
            let problems = evidence::verify_tenant(gov, &t).await.map_err(fail)?;
            print(out, &serde_json::json!({"tenant": t, "problems": problems}))?;
            Ok(if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
