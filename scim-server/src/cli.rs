//! The command line: one binary, several roles.
//!
//! ```text
//! scim-server [--config FILE] serve | migrate | check-config
//! scim-server token create [--tenant T] [--label L] [--read-only] [--basic-username U] | token list [--tenant T] | token revoke ID
//! scim-server tenant create ID [--name N] [--bulk-upsert] | tenant list
//! scim-server audit verify [--tenant T]
//! scim-server completions SHELL | man DIR
//! scim-server inbound status | inbound dead-letters list|retry ID
//! scim-server import FILE.csv --mapping FILE.toml [--tenant T] [--dry-run] [--report FILE] [--delimiter D]
//! scim-server governance review create|list|show|items|decide|apply … | governance exceptions list|remove … | governance run
//! ```

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::server;
use crate::store::{Store, Tenant};
use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The version `--version` prints: the package version and the commit it was built from
/// ("unknown" outside a git checkout, see `build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SCIM_SERVER_COMMIT"),
    ")"
);

/// SCIM 2.0 service provider for Microsoft Entra ID, Okta and HR-style clients.
#[derive(Debug, Parser)]
#[command(name = "scim-server", version = VERSION, about)]
pub struct Cli {
    /// TOML configuration file (environment variables `SCIM_*` override it).
    #[arg(long, global = true, env = "SCIM_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve SCIM over HTTP(S) (the default for a fresh machine: no configuration needed).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration, print it with secrets redacted, and exit.
    CheckConfig,
    /// Manage static bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Check the change log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The Microsoft Graph bridge: worker, plans, status, dead letters (needs `[graph]`).
    #[command(subcommand)]
    Bridge(crate::bridge::cli::BridgeCommand),
    /// Print a shell completion script (e.g. `scim-server completions bash > /etc/bash_completion.d/scim-server`).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Write man pages (`scim-server.1` and one per subcommand) into a directory.
    Man {
        /// Where to write them (created if missing).
        dir: PathBuf,
    },
    /// The HR intake queue: status and dead letters.
    #[command(subcommand)]
    Inbound(crate::inbound::cli::InboundCommand),
    /// Import employees from a CSV file: upserts by `externalId`, checked first, with a per-row
    /// report (`--dry-run` writes nothing).
    Import(crate::inbound::import_cli::ImportArgs),
    /// Governance: access reviews, exceptions, the governance schedule.
    #[command(subcommand)]
    Governance(crate::governance::cli::GovernanceCommand),
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret once.
    Create {
        /// Tenant the token belongs to (default: the configured default tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// A label to recognise the token by.
        #[arg(long, default_value = "")]
        label: String,
        /// The token may read but not write.
        #[arg(long)]
        read_only: bool,
        /// Create an HTTP Basic credential with this username instead of a bearer token (Okta's
        /// "Basic Auth" mode); the password is generated and shown once.
        #[arg(long, value_name = "USERNAME")]
        basic_username: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this tenant's tokens.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a token by id.
    Revoke {
        /// The token id (from `token list`).
        id: String,
    },
}

/// `tenant` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        /// Tenant id.
        id: String,
        /// Display name (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// HR upsert: a Bulk `POST /Users` whose `externalId` exists updates that user.
        #[arg(long)]
        bulk_upsert: bool,
    },
    /// List tenants.
    List,
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the change log's hash chain; exit 1 when a problem is found.
    Verify {
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // These two describe the command line itself and need no configuration.
    match &cli.command {
        Command::Completions { shell } => return completions(*shell),
        Command::Man { dir } => return report(man_pages(dir)),
        _ => {}
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = server::init_logging(&config) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}

/// Runs one subcommand.
pub async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => server::serve(config).await.map(|()| ExitCode::SUCCESS),
        Command::Bridge(cmd) => crate::bridge::cli::run(cmd, &config).await,
        Command::Inbound(cmd) => crate::inbound::cli::run(cmd, &config).await,
        Command::Import(args) => crate::inbound::import_cli::run(args, &config).await,
        Command::Governance(cmd) => crate::governance::cli::run(cmd, &config).await,
        Command::CheckConfig => check_config(&config),
        Command::Migrate => migrate(&config).await,
        Command::Token(cmd) => token(cmd, &config).await,
        Command::Tenant(cmd) => tenant(cmd, &config).await,
        Command::Audit(AuditCommand::Verify { tenant }) => audit_verify(tenant, &config).await,
        Command::Completions { shell } => Ok(completions(shell)),
        Command::Man { dir } => man_pages(&dir),
    }
}

/// `completions SHELL`: the completion script on standard output.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "scim-server", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// `man DIR`: `scim-server.1` and `scim-server-<subcommand>.1` pages.
fn man_pages(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let command = Cli::command().version(VERSION);
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    println!("man pages written to {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// `check-config`: the effective configuration with secrets redacted.
fn check_config(config: &Config) -> anyhow::Result<ExitCode> {
    let mut shown = config.clone();
    if shown.token.is_some() {
        shown.token = Some(crate::config::SecretString::new("<redacted>"));
    }
    for table in [shown.auth.as_mut(), shown.graph.as_mut()]
        .into_iter()
        .flatten()
    {
        for (_, v) in table.0.iter_mut() {
            *v = toml::Value::String("<set>".into());
        }
    }
    println!(
        "{}",
        toml::to_string_pretty(&shown).context("printing the configuration")?
    );
    println!("# configuration OK");
    Ok(ExitCode::SUCCESS)
}

/// The store, migrated: every administrative subcommand starts here.
async fn migrated_store(config: &Config) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let store = server::open_store(&config.database_url).await?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// `migrate`.
async fn migrate(config: &Config) -> anyhow::Result<ExitCode> {
    migrated_store(config).await?;
    println!("migrations applied");
    Ok(ExitCode::SUCCESS)
}

/// `token create | list | revoke`.
async fn token(cmd: TokenCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let clock = SystemClock;
    let store = migrated_store(config).await?;
    match cmd {
        TokenCommand::Create {
            tenant,
            label,
            read_only,
            basic_username,
        } => {
            let tenant = tenant.unwrap_or_else(|| config.default_tenant.clone());
            if tenant == config.default_tenant {
                server::ensure_tenant(store.as_ref(), &tenant, &clock).await?;
            } else if store.tenant(&tenant).await?.is_none() {
                anyhow::bail!(
                    "tenant {tenant:?} does not exist (create it with `scim-server tenant create`)"
                );
            }
            if let Some(username) = basic_username {
                if !crate::auth::basic::valid_username(&username) {
                    anyhow::bail!(
                        "--basic-username {username:?}: use 1 to 256 characters, no colon"
                    );
                }
                let (record, password) = crate::auth::basic::create_basic_credential(
                    store.as_ref(),
                    &tenant,
                    &username,
                    read_only,
                    clock.now(),
                )
                .await?;
                println!(
                    "Basic credential {} for tenant {:?}{}:",
                    record.id,
                    record.tenant,
                    if read_only { " (read-only)" } else { "" }
                );
                println!("username: {username}");
                println!("password: {}", password.expose());
                eprintln!("the password is shown only once; store it now");
                return Ok(ExitCode::SUCCESS);
            }
            let (record, secret) =
                crate::auth::create_token(store.as_ref(), &tenant, &label, read_only, clock.now())
                    .await?;
            let secret = secret.expose();
            println!(
                "token {} for tenant {:?}{}:",
                record.id,
                record.tenant,
                if read_only { " (read-only)" } else { "" }
            );
            println!("{secret}");
            eprintln!("the secret is shown only once; store it now");
        }
        TokenCommand::List { tenant } => {
            println!(
                "{:<38} {:<16} {:<6} {:<31} {:<8} label",
                "id", "tenant", "access", "created", "state"
            );
            for t in crate::auth::list_tokens(store.as_ref(), tenant.as_deref()).await? {
                let state = if t.revoked.is_some() {
                    "revoked"
                } else if t.expires.is_some_and(|e| e <= clock.now()) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<38} {:<16} {:<6} {:<31} {:<8} {}",
                    t.id,
                    t.tenant,
                    if t.read_only { "read" } else { "write" },
                    scim_core::resource::format_datetime(t.created),
                    state,
                    t.label
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if crate::auth::revoke_token(store.as_ref(), &id, clock.now()).await? {
                println!("token {id} revoked");
            } else {
                eprintln!("no token {id}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `tenant create | list`.
async fn tenant(cmd: TenantCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let store = migrated_store(config).await?;
    match cmd {
        TenantCommand::Create {
            id,
            name,
            bulk_upsert,
        } => {
            let tenant = Tenant {
                name: name.unwrap_or_else(|| id.clone()),
                id,
                bulk_upsert_by_external_id: bulk_upsert,
                created: SystemClock.now(),
            };
            store.create_tenant(&tenant).await?;
            println!("tenant {:?} created", tenant.id);
        }
        TenantCommand::List => {
            println!("{:<20} {:<12} {:<31} name", "id", "bulk-upsert", "created");
            for t in store.list_tenants().await? {
                println!(
                    "{:<20} {:<12} {:<31} {}",
                    t.id,
                    t.bulk_upsert_by_external_id,
                    scim_core::resource::format_datetime(t.created),
                    t.name
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `audit verify`: exit 1 when any tenant's chain has a problem.
async fn audit_verify(tenant: Option<String>, config: &Config) -> anyhow::Result<ExitCode> {
    let store = migrated_store(config).await?;
    let tenants = match tenant {
        Some(t) => vec![t],
        None => audited_tenants(store.as_ref()).await?,
    };
    let mut ok = true;
    for t in tenants {
        let report = store.verify_chain(&t).await?;
        if report.problems.is_empty() {
            println!(
                "tenant {:?}: {} records, chain intact",
                report.tenant, report.records
            );
        } else {
            ok = false;
            println!(
                "tenant {:?}: {} records, {} problems:",
                report.tenant,
                report.records,
                report.problems.len()
            );
            for p in &report.problems {
                println!("  - {p}");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every tenant `audit verify` checks without `--tenant`: the tenants in the store and every
/// tenant id with change records, existing or not (a record must never escape the audit because
/// a credential named a tenant that was never created).
async fn audited_tenants(store: &dyn Store) -> crate::store::Result<Vec<String>> {
    let mut ids = tenant_ids(store, None).await?;
    ids.extend(store.tenants_with_changes().await?);
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The tenant named on the command line, or else the id of every tenant in the store.
pub(crate) async fn tenant_ids(
    store: &dyn Store,
    tenant: Option<String>,
) -> crate::store::Result<Vec<String>> {
    Ok(match tenant {
        Some(t) => vec![t],
        None => store
            .list_tenants()
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect(),
    })
}
