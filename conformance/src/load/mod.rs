//! `scim-conformance load`: a closed-loop load generator for any SCIM 2.0 base URL.
//!
//! A fixed number of connections send requests back to back for a fixed duration or request
//! count; every latency goes into an HDR histogram. The run prints a table (requests, errors,
//! req/s, p50, p90, p99, max) and writes the same figures as JSON (`--json`). Non-2xx answers
//! and transport errors are counted as errors and reported, never dropped.
//!
//! Workloads (see `docs/benchmarks.md`):
//! - `W1` `GET /Users/{id}`; `W2` `GET /Users?filter=userName eq "…"`;
//! - `W3` `POST /Users` (unique users); `W4` `PATCH /Users/{id}` in Entra's legacy dialect;
//! - `W5` `PATCH /Groups/{id}` adding one member and removing it again, on a group of
//!   `--group-size` members; `W6` `GET /Groups/{id}?excludedAttributes=members`;
//! - `W7` (`entra-cycle`) Entra's initial cycle: users, groups, then memberships in `PATCH`es of
//!   up to 100 members, with the total time and (with `--server-pid`) the server's peak memory;
//! - `W8` paging through `--users` users with `count=100`.
//!
//! The data a workload needs (users, groups of a given size) is created through the API
//! before the measurement and remembered in `--state`, so that a sequence of invocations
//! against one server builds on the same data. `--summarize DIR` reads the JSON files of a
//! whole benchmark run and prints them side by side with ratios and the targets.
//!
//! Modules: [`plan`] (pure request builders, the Entra cycle), [`hist`] (histogram and
//! counters), [`engine`] (client and driver), [`state`] (data and seeding), [`cycle`] (W7),
//! [`report`] (JSON, table, comparison).

pub mod cycle;
pub mod engine;
pub mod hist;
pub mod plan;
pub mod report;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use engine::{Client, Generator, Limit, drive};
use report::{CpuCounters, PhaseReport, REPORT_FORMAT, RunReport, ServerMemory};
use state::State;

/// Errors of a load run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// JSON (state or report) could not be read or written.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Creating the data a workload needs failed.
    #[error("seeding: {0}")]
    Seed(String),
}

/// A workload of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `GET /Users/{id}`.
    W1,
    /// `GET /Users?filter=userName eq "…"`.
    W2,
    /// `POST /Users`.
    W3,
    /// `PATCH /Users/{id}`, Entra legacy dialect.
    W4,
    /// `PATCH /Groups/{id}` adding (then removing) one member.
    W5,
    /// `GET /Groups/{id}?excludedAttributes=members`.
    W6,
    /// Entra initial cycle.
    W7,
    /// Paging through users with `count=100`.
    W8,
}

impl Workload {
    /// Parses `W1`…`W8` (any case) or `entra-cycle`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "W1" => Self::W1,
            "W2" => Self::W2,
            "W3" => Self::W3,
            "W4" => Self::W4,
            "W5" => Self::W5,
            "W6" => Self::W6,
            "W7" | "ENTRA-CYCLE" => Self::W7,
            "W8" => Self::W8,
            _ => return None,
        })
    }

    /// `W1`…`W8`.
    pub fn id(self) -> &'static str {
        match self {
            Self::W1 => "W1",
            Self::W2 => "W2",
            Self::W3 => "W3",
            Self::W4 => "W4",
            Self::W5 => "W5",
            Self::W6 => "W6",
            Self::W7 => "W7",
            Self::W8 => "W8",
        }
    }
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    Workload::parse(s).ok_or_else(|| format!("unknown workload {s:?} (W1..W8, entra-cycle)"))
}

fn parse_sizes(s: &str) -> Result<usize, String> {
    s.replace('_', "")
        .parse()
        .map_err(|e| format!("{s:?}: {e}"))
}

/// Arguments of `scim-conformance load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2; several, separated by commas, for
    /// replicas of one server on one database (the workers are spread over them in turn).
    #[arg(
        long,
        env = "SCIM_CONFORMANCE_BASE_URL",
        required_unless_present = "summarize"
    )]
    pub base_url: Option<String>,
    /// Bearer token sent with every request.
    #[arg(
        long,
        env = "SCIM_CONFORMANCE_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub token: String,
    /// W1..W8 or entra-cycle (= W7).
    #[arg(long, value_parser = parse_workload, required_unless_present = "summarize")]
    pub workload: Option<Workload>,
    /// Concurrent connections (workers).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Measure for this many seconds (default 10 unless --requests is given).
    #[arg(long, conflicts_with = "requests")]
    pub duration: Option<f64>,
    /// Measure this many requests in all.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Unmeasured warm-up before the measurement, in seconds (not for W7 and W8).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Users stored (W1, W2, W4, W8: seeded up to this count; W7: users created by the cycle).
    #[arg(long, default_value = "1000", value_parser = parse_sizes)]
    pub users: usize,
    /// Members of the group W5 and W6 work on.
    #[arg(long, default_value = "10", value_parser = parse_sizes)]
    pub group_size: usize,
    /// W7: groups created by the cycle.
    #[arg(long, default_value = "1000", value_parser = parse_sizes)]
    pub groups: usize,
    /// W7: memberships added by the cycle.
    #[arg(long, default_value = "1000000", value_parser = parse_sizes)]
    pub memberships: usize,
    /// W7: exact sizes of the first groups (their members are the first users), so that W5 and
    /// W6 find groups of these sizes afterwards.
    #[arg(long, value_delimiter = ',', default_value = "10,10000,100000", value_parser = parse_sizes)]
    pub tiers: Vec<usize>,
    /// W7: start no new request after this many seconds (the report says what was left).
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// W8: page size.
    #[arg(long, default_value_t = 100)]
    pub page_size: u64,
    /// Keeps what the tool created on the server between invocations (JSON file).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Concurrency of seeding (creating the data a workload needs).
    #[arg(long, default_value_t = 16)]
    pub seed_concurrency: usize,
    /// Name of the measured server in reports (e.g. ours-sqlite, ceiling, peer).
    #[arg(long, default_value = "server")]
    pub target: String,
    /// Process id of the server: its peak memory (VmHWM) is read after the run (Linux).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also reports the CPU time per request of the processes with this name (as in
    /// `/proc/<pid>/comm`, e.g. `postgres`); repeatable. The server's (`--server-pid`) and the
    /// generator's own are always reported (Linux).
    #[arg(long = "cpu-of", value_name = "NAME")]
    pub cpu_of: Vec<String>,
    /// Timeout of each HTTP request, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Runtime worker threads of the generator.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Skip the check of one answer after the measurement (for fixed-answer servers such as
    /// the ceiling, whose answers cannot match).
    #[arg(long)]
    pub no_verify: bool,
    /// Write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Instead of measuring: read every result JSON in this directory and print them side by
    /// side with ratios and targets (also written to DIR/summary.txt).
    #[arg(long)]
    pub summarize: Option<PathBuf>,
}

/// Runs `scim-conformance load`; `Ok(true)` when every request succeeded.
pub fn main(args: LoadArgs) -> Result<bool, LoadError> {
    if let Some(dir) = &args.summarize {
        return summarize(dir).map(|_| true);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| LoadError::Usage(format!("tokio runtime: {e}")))?;
    let report = rt.block_on(run(&args))?;
    print!("{}", report::format_table(std::slice::from_ref(&report)));
    for n in &report.notes {
        println!("note: {n}");
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?).map_err(|source| {
            LoadError::Io {
                path: path.display().to_string(),
                source,
            }
        })?;
    }
    Ok(report.total.errors == 0)
}

/// Reads the reports in `dir` and prints (and writes `summary.txt`) the comparison.
pub fn summarize(dir: &std::path::Path) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let runs: Vec<RunReport> = files
        .iter()
        .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
        .collect();
    let text = format!(
        "{}\n{}",
        report::format_table(&runs),
        report::compare(&runs)
    );
    print!("{text}");
    std::fs::write(dir.join("summary.txt"), &text).map_err(io)?;
    Ok(())
}

/// After the measurement, checks with one request that the server answered the workload with
/// what it asks for (a fast wrong answer is no result): the user found by `W2`'s filter, the
/// user of `W1`, a `W6` group without `members`. `None` when fine or not applicable.
async fn verify(
    client: &Client,
    workload: Workload,
    state: &State,
    args: &LoadArgs,
) -> Option<String> {
    let user = state.users.first()?;
    type Check = Box<dyn Fn(&serde_json::Value) -> bool + Send>;
    let (req, check): (plan::Req, Check) = match workload {
        Workload::W1 => {
            let id = user.id.clone();
            (
                plan::get_user(&user.id),
                Box::new(move |v| v["id"] == id.as_str()),
            )
        }
        Workload::W2 => {
            let name = user.user_name.clone();
            (
                plan::find_user(&user.user_name),
                Box::new(move |v| {
                    v["totalResults"] == 1 && v["Resources"][0]["userName"] == name.as_str()
                }),
            )
        }
        Workload::W6 => {
            let g = state
                .groups
                .iter()
                .find(|g| g.start == 0 && g.len == args.group_size)?;
            (
                plan::get_group_without_members(&g.id),
                Box::new(|v| v.get("members").is_none() && v.get("id").is_some()),
            )
        }
        _ => return None,
    };
    let answer = client.send(&req).await;
    match answer {
        Ok(a) if (200..300).contains(&a.status) => {
            let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
            (!check(&v)).then(|| {
                format!(
                    "{} {} answered {}",
                    req.method.as_str(),
                    req.path,
                    String::from_utf8_lossy(&a.body[..a.body.len().min(300)])
                )
            })
        }
        Ok(a) => Some(format!(
            "{} {} answered {}",
            req.method.as_str(),
            req.path,
            a.status
        )),
        Err(e) => Some(format!("{} {}: {e}", req.method.as_str(), req.path)),
    }
}

/// Seeds what the workload needs, measures it and builds its report.
pub async fn run(args: &LoadArgs) -> Result<RunReport, LoadError> {
    let base_url = args
        .base_url
        .clone()
        .ok_or_else(|| LoadError::Usage("--base-url is required".into()))?;
    let workload = args
        .workload
        .ok_or_else(|| LoadError::Usage("--workload is required".into()))?;
    let conc = args.concurrency.max(1);
    let client = Client::new(
        &base_url,
        &args.token,
        conc.max(args.seed_concurrency),
        Duration::from_secs(args.timeout.max(1)),
    )?;
    let mut state = match &args.state {
        Some(p) => State::load(p)?,
        None => State::new(),
    };
    let seed = args.seed_concurrency.max(1);
    let mut notes = Vec::new();
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let limit = match (args.duration, args.requests) {
        (_, Some(n)) => Limit::Requests(n),
        (Some(d), None) => Limit::Duration(Duration::from_secs_f64(d.max(0.1))),
        (None, None) if workload == Workload::W8 => {
            Limit::Requests(args.users.div_ceil(args.page_size.max(1) as usize) as u64)
        }
        (None, None) => Limit::Duration(Duration::from_secs(10)),
    };

    let seed_start = std::time::Instant::now();
    let (generator, size): (Option<Generator>, Option<u64>) = match workload {
        Workload::W1 | Workload::W2 | Workload::W4 => {
            state::ensure_users(&client, &mut state, args.users, seed).await?;
            let users: Arc<Vec<state::SeedUser>> = Arc::new(state.users[..args.users].to_vec());
            let g: Generator = match workload {
                Workload::W1 => Arc::new(move |_, _, rng| {
                    plan::get_user(&users[rand::Rng::gen_range(rng, 0..users.len())].id)
                }),
                Workload::W2 => Arc::new(move |_, _, rng| {
                    plan::find_user(&users[rand::Rng::gen_range(rng, 0..users.len())].user_name)
                }),
                _ => Arc::new(move |w, k, rng| {
                    let u = &users[rand::Rng::gen_range(rng, 0..users.len())];
                    plan::patch_user_legacy(&u.id, &format!("w4-{w}-{k}@bench.example"))
                }),
            };
            (Some(g), Some(args.users as u64))
        }
        Workload::W3 => {
            let prefix = format!(
                "{}-w3-{}",
                state.prefix,
                &uuid::Uuid::new_v4().simple().to_string()[..6]
            );
            notes.push("W3 creates a new user per request".into());
            // One counter across warm-up and measurement: every name is new.
            let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let g: Generator = Arc::new(move |_, _, _| {
                let k = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let name = format!("{prefix}-{k}@bench.example");
                plan::create_user(&name, &format!("ext-{name}"))
            });
            (Some(g), None)
        }
        Workload::W5 | Workload::W6 => {
            let size = args.group_size;
            // W5 needs one user outside the group per worker.
            state::ensure_users(&client, &mut state, size + conc, seed).await?;
            let gi = state::ensure_group(&client, &mut state, size, seed).await?;
            let group = state.groups[gi].clone();
            let g: Generator = if workload == Workload::W5 {
                notes.push(format!(
                    "W5 alternates, per worker, adding one user outside the group and removing it \
                     again (RFC filter form), so the group stays at {size} to {} members",
                    size + conc
                ));
                let n = state.users.len();
                let free: Arc<Vec<String>> = Arc::new(
                    (0..conc)
                        .map(|w| state.users[(group.start + group.len + w) % n].id.clone())
                        .collect(),
                );
                let gid = group.id.clone();
                Arc::new(move |w, k, _| {
                    if k % 2 == 0 {
                        plan::add_members(&gid, &[&free[w]])
                    } else {
                        plan::remove_member(&gid, &free[w])
                    }
                })
            } else {
                let gid = group.id.clone();
                Arc::new(move |_, _, _| plan::get_group_without_members(&gid))
            };
            (Some(g), Some(size as u64))
        }
        Workload::W8 => {
            state::ensure_users(&client, &mut state, args.users, seed).await?;
            let page = args.page_size.max(1);
            let pages = (args.users as u64).div_ceil(page).max(1);
            notes.push(format!(
                "W8 pages through {} users, {pages} pages of {page}; worker w reads pages w, w+c, …",
                args.users
            ));
            let c = conc as u64;
            let g: Generator =
                Arc::new(move |w, k, _| plan::list_users_page((w as u64 + k * c) % pages, page));
            (Some(g), Some(args.users as u64))
        }
        Workload::W7 => (None, Some(args.users as u64)),
    };
    let seeded = seed_start.elapsed();
    if seeded > Duration::from_millis(100) {
        notes.push(format!("seeding took {:.1}s", seeded.as_secs_f64()));
    }
    if let Some(p) = &args.state {
        state.save(p)?;
    }

    let cpu;
    let (total, phases) =
        match generator {
            Some(g) => {
                if args.warmup > 0.0 && workload != Workload::W8 {
                    let _ = drive(
                        &client,
                        conc,
                        Limit::Duration(Duration::from_secs_f64(args.warmup)),
                        g.clone(),
                    )
                    .await;
                }
                let before = CpuCounters::read(args.server_pid, &args.cpu_of);
                let (rec, elapsed) = drive(&client, conc, limit, g).await;
                cpu = before.per_request(
                    &CpuCounters::read(args.server_pid, &args.cpu_of),
                    rec.requests(),
                );
                let samples = rec.samples.clone();
                (
                    (
                        PhaseReport::from_recorder(workload.id(), &rec, elapsed.as_secs_f64()),
                        samples,
                    ),
                    Vec::new(),
                )
            }
            None => {
                let dir =
                    plan::Directory::new(args.users, args.groups, args.memberships, &args.tiers);
                notes.push(format!(
                "W7: {} users, {} groups, {} memberships (first groups: {:?}), concurrency {conc}",
                dir.users,
                dir.groups.len(),
                dir.memberships(),
                &dir.groups.iter().take(args.tiers.len()).map(|g| g.1).collect::<Vec<_>>()
            ));
                let before = CpuCounters::read(args.server_pid, &args.cpu_of);
                let out = cycle::run_cycle(
                    &client,
                    &mut state,
                    &dir,
                    conc,
                    args.time_limit.map(Duration::from_secs_f64),
                )
                .await;
                if let Some(p) = &args.state {
                    state.save(p)?;
                }
                let out = out?;
                cpu = before.per_request(
                    &CpuCounters::read(args.server_pid, &args.cpu_of),
                    out.total.requests(),
                );
                if let Some(why) = &out.incomplete {
                    notes.push(format!("INCOMPLETE: {why}"));
                }
                let samples = out.total.samples.clone();
                (
                    (
                        PhaseReport::from_recorder("W7", &out.total, out.elapsed.as_secs_f64()),
                        samples,
                    ),
                    out.phases,
                )
            }
        };
    let ((total, error_samples), phases) = (total, phases);
    let problem = if args.no_verify {
        None
    } else {
        verify(&client, workload, &state, args).await
    };
    if let Some(problem) = problem {
        notes.push(format!("VERIFY FAILED: {problem}"));
    }
    Ok(RunReport {
        format: REPORT_FORMAT,
        target: args.target.clone(),
        workload: workload.id().into(),
        size,
        base_url,
        concurrency: conc,
        started_at,
        total,
        phases,
        server: args.server_pid.and_then(ServerMemory::read),
        cpu,
        error_samples,
        notes,
    })
}
