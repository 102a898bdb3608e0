//! `scim-conformance`: runs the conformance checks against a SCIM 2.0 server.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use scim_conformance::{Profile, RunConfig, registry, run};

/// Conformance and interoperability checks for a SCIM 2.0 server (RFC 7643/7644, Entra ID, Okta).
#[derive(Parser, Debug)]
#[command(
    name = "scim-conformance",
    version,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// Optional subcommand; without one the conformance checks run.
    #[command(subcommand)]
    command: Option<Command>,
    /// SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2
    #[arg(
        long,
        env = "SCIM_CONFORMANCE_BASE_URL",
        required_unless_present = "list"
    )]
    base_url: Option<String>,
    /// Bearer token sent with every request.
    #[arg(
        long,
        env = "SCIM_CONFORMANCE_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    token: String,
    /// Which checks to run: rfc, entra, okta or all.
    #[arg(long, default_value = "all", value_parser = parse_profile)]
    profile: Profile,
    /// Comma-separated check ids or id prefixes (e.g. `filter,patch.add.single`).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write the report as JUnit XML to this file.
    #[arg(long)]
    junit: Option<std::path::PathBuf>,
    /// Timeout of each HTTP request, in seconds.
    #[arg(long, default_value_t = 15)]
    timeout: u64,
    /// List the checks (id, profile, reference, title) and exit.
    #[arg(long)]
    list: bool,
}

/// Subcommands besides the default conformance run.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Load generator: measures a SCIM server under a workload (W1..W8, entra-cycle), prints a
    /// table and writes JSON (see docs/benchmarks.md).
    Load(Box<scim_conformance::load::LoadArgs>),
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::parse(s).ok_or_else(|| format!("unknown profile {s:?} (rfc, entra, okta, all)"))
}

/// Exit status: 0 without failures, 1 when a check (or a load request) failed, 2 for a usage
/// error (or a load run that could not seed its data).
fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if let Some(Command::Load(load)) = args.command {
        return match scim_conformance::load::main(*load) {
            Ok(true) => Ok(ExitCode::SUCCESS),
            Ok(false) => {
                eprintln!("error: the run had failed requests (see the table)");
                Ok(ExitCode::FAILURE)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(ExitCode::from(2))
            }
        };
    }
    if args.list {
        for c in registry() {
            println!(
                "{:<48} {:<6} {:<28} {}",
                c.id,
                c.profile.name(),
                c.reference,
                c.title
            );
        }
        println!("{} checks", registry().len());
        return Ok(ExitCode::SUCCESS);
    }
    let mut config = RunConfig::new(args.base_url.unwrap_or_default(), args.token)
        .profile(args.profile)
        .only(args.only)
        .verbose(true);
    config.timeout = std::time::Duration::from_secs(args.timeout.max(1));
    let selected = registry()
        .iter()
        .filter(|c| config.profile.includes(c.profile) && config.selects(c.id))
        .count();
    if selected == 0 {
        eprintln!(
            "error: no check matches --profile {} --only {} (see --list)",
            config.profile,
            config.only.join(",")
        );
        return Ok(ExitCode::from(2));
    }
    let report = run(&config);
    println!("{}", report.summary_line());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.to_json())?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report.to_junit())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
