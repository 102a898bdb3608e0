//! The result of one load run (JSON on disk), its text table, and the side-by-side comparison
//! of several runs with the ratios and targets of the benchmark issue.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::hist::{LatencySummary, Recorder};

/// Version of the JSON layout below.
pub const REPORT_FORMAT: u32 = 1;

/// One measured phase (a whole workload, or a part of the Entra cycle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// Name, e.g. `W1` or `users`.
    pub name: String,
    /// Requests sent.
    pub requests: u64,
    /// Non-2xx answers plus transport errors.
    pub errors: u64,
    /// Wall-clock time of the phase, in seconds.
    pub elapsed_s: f64,
    /// Requests per second over `elapsed_s`.
    pub rps: f64,
    /// Latency of the answered requests.
    pub latency: LatencySummary,
    /// Answers by status code.
    pub statuses: BTreeMap<String, u64>,
}

impl PhaseReport {
    /// Builds a phase from what its workers recorded.
    pub fn from_recorder(name: &str, rec: &Recorder, elapsed_s: f64) -> Self {
        let requests = rec.requests();
        Self {
            name: name.to_owned(),
            requests,
            errors: rec.errors(),
            elapsed_s: round3(elapsed_s),
            rps: if elapsed_s > 0.0 {
                (requests as f64 / elapsed_s * 10.0).round() / 10.0
            } else {
                0.0
            },
            latency: rec.latency.summary(),
            statuses: rec
                .statuses
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .chain(
                    (rec.transport_errors > 0).then(|| ("transport".into(), rec.transport_errors)),
                )
                .collect(),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Memory of the server process, read from `/proc/<pid>/status` after the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ServerMemory {
    /// The process id.
    pub pid: u32,
    /// Peak resident set size (`VmHWM`), in KiB.
    pub vm_hwm_kib: u64,
    /// Current resident set size (`VmRSS`), in KiB.
    pub vm_rss_kib: u64,
}

impl ServerMemory {
    /// Reads the memory figures of process `pid` (Linux only; `None` elsewhere or when gone).
    pub fn read(pid: u32) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Self::parse(pid, &text)
    }

    /// Parses the text of `/proc/<pid>/status`.
    pub fn parse(pid: u32, status: &str) -> Option<Self> {
        let field = |name: &str| {
            status.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        };
        Some(Self {
            pid,
            vm_hwm_kib: field("VmHWM:")?,
            vm_rss_kib: field("VmRSS:")?,
        })
    }
}

/// CPU time spent per request during the measurement, by process, from `/proc` (Linux): where
/// the cores went, which on a machine shared by the server, its database and this generator is
/// what bounds the rate (`docs/benchmarks.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuReport {
    /// The server process (`--server-pid`), user and system time, µs per request.
    pub server_us: Option<f64>,
    /// This generator, µs per request.
    pub generator_us: f64,
    /// Processes named with `--cpu-of` (e.g. `postgres`), each name's total, µs per request.
    pub others: Vec<(String, f64)>,
    /// Share of the machine's CPU time that was idle or waiting for I/O, in percent.
    pub idle_percent: f64,
}

/// A reading of CPU counters, taken at the start and at the end of a measurement.
#[derive(Debug, Clone, Default)]
pub struct CpuCounters {
    /// Clock ticks of the server process.
    server: Option<u64>,
    /// Clock ticks of this process.
    generator: u64,
    /// Clock ticks by process id, of the processes named with `--cpu-of`, with their name.
    others: std::collections::HashMap<u32, (String, u64)>,
    /// All and idle (idle + iowait) ticks of the machine (`/proc/stat`).
    machine: (u64, u64),
}

/// Clock ticks per second of `/proc`'s counters (`USER_HZ`: 100 on every Linux architecture
/// the generator runs on).
const TICKS_PER_SECOND: f64 = 100.0;

impl CpuCounters {
    /// Reads the counters now (empty where `/proc` is missing).
    pub fn read(server_pid: Option<u32>, names: &[String]) -> Self {
        let ticks_of = |pid: &str| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            parse_process_stat(&stat)
        };
        let mut others = std::collections::HashMap::new();
        if !names.is_empty()
            && let Ok(dir) = std::fs::read_dir("/proc")
        {
            for entry in dir.flatten() {
                let file_name = entry.file_name();
                let Some(pid) = file_name.to_str().and_then(|p| p.parse::<u32>().ok()) else {
                    continue;
                };
                if let Some((name, ticks)) = ticks_of(&pid.to_string())
                    && names.contains(&name)
                {
                    others.insert(pid, (name, ticks));
                }
            }
        }
        let machine = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| parse_machine_stat(&text))
            .unwrap_or_default();
        Self {
            server: server_pid.and_then(|pid| ticks_of(&pid.to_string()).map(|(_, t)| t)),
            generator: ticks_of("self").map(|(_, t)| t).unwrap_or(0),
            others,
            machine,
        }
    }

    /// What was spent between `self` and `end`, per request; `None` without requests or
    /// without `/proc`. A process of `--cpu-of` that started meanwhile counts from zero; one
    /// that ended meanwhile is not counted.
    pub fn per_request(&self, end: &Self, requests: u64) -> Option<CpuReport> {
        if requests == 0 || end.machine.0 <= self.machine.0 {
            return None;
        }
        let us = |ticks: u64| ticks as f64 * 1e6 / TICKS_PER_SECOND / requests as f64;
        let mut by_name: Vec<(String, u64)> = Vec::new();
        for (pid, (name, ticks)) in &end.others {
            let before = self.others.get(pid).map(|(_, t)| *t).unwrap_or(0);
            let spent = ticks.saturating_sub(before);
            match by_name.iter_mut().find(|(n, _)| n == name) {
                Some((_, total)) => *total += spent,
                None => by_name.push((name.clone(), spent)),
            }
        }
        by_name.sort();
        let all = end.machine.0 - self.machine.0;
        let idle = end.machine.1.saturating_sub(self.machine.1);
        Some(CpuReport {
            server_us: match (self.server, end.server) {
                (Some(a), Some(b)) => Some(us(b.saturating_sub(a))),
                _ => None,
            },
            generator_us: us(end.generator.saturating_sub(self.generator)),
            others: by_name.into_iter().map(|(n, t)| (n, us(t))).collect(),
            idle_percent: idle as f64 * 100.0 / all as f64,
        })
    }
}

/// A process's name and its user + system clock ticks, from the text of `/proc/<pid>/stat`
/// (the name is in parentheses and may itself hold spaces or parentheses).
pub fn parse_process_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    // After the name: state (field 3) … utime (14), stime (15).
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// The machine's total and idle (idle + iowait) clock ticks, from the text of `/proc/stat`.
pub fn parse_machine_stat(stat: &str) -> Option<(u64, u64)> {
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = cpu
        .split_whitespace()
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((ticks.iter().sum(), idle))
}

/// The result of one `scim-conformance load` invocation (written with `--json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// [`REPORT_FORMAT`].
    pub format: u32,
    /// Which server was measured (`--target`, e.g. `ours-sqlite`, `ceiling`, `peer`).
    pub target: String,
    /// Workload id (`W1` … `W8`).
    pub workload: String,
    /// Data size the workload ran at (users for W1–W4, W7, W8; group members for W5, W6).
    pub size: Option<u64>,
    /// SCIM base URL.
    pub base_url: String,
    /// Concurrent connections.
    pub concurrency: usize,
    /// When the measurement started (RFC 3339, UTC).
    pub started_at: String,
    /// The whole measurement (for W7 the whole cycle).
    pub total: PhaseReport,
    /// Parts of the measurement (W7: users, groups, memberships).
    pub phases: Vec<PhaseReport>,
    /// Server memory after the run, when `--server-pid` was given.
    pub server: Option<ServerMemory>,
    /// CPU time per request during the measurement (Linux; absent in older reports).
    #[serde(default)]
    pub cpu: Option<CpuReport>,
    /// The first few error answers.
    pub error_samples: Vec<String>,
    /// Free-form remarks (seeding time, workload details).
    pub notes: Vec<String>,
}

impl RunReport {
    /// `W2@10000`, or just `W1`.
    pub fn key(&self) -> String {
        match self.size {
            Some(n) => format!("{}@{}", self.workload, n),
            None => self.workload.clone(),
        }
    }
}

/// Formats microseconds as `812µs`, `3.4ms` or `1.20s`.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2}s", us as f64 / 1_000_000.0)
    }
}

/// Formats requests per second with a sensible number of digits.
pub fn fmt_rps(rps: f64) -> String {
    if rps >= 100.0 {
        format!("{rps:.0}")
    } else {
        format!("{rps:.1}")
    }
}

/// The text table of runs: workload, requests, errors, req/s, p50, p90, p99, max (phases
/// indented below their run).
pub fn format_table(runs: &[RunReport]) -> String {
    let mut rows = vec![[
        "target".to_string(),
        "workload".into(),
        "requests".into(),
        "errors".into(),
        "req/s".into(),
        "p50".into(),
        "p90".into(),
        "p99".into(),
        "max".into(),
        "time".into(),
    ]];
    let row = |target: &str, name: String, p: &PhaseReport| {
        [
            target.to_string(),
            name,
            p.requests.to_string(),
            p.errors.to_string(),
            fmt_rps(p.rps),
            fmt_us(p.latency.p50_us),
            fmt_us(p.latency.p90_us),
            fmt_us(p.latency.p99_us),
            fmt_us(p.latency.max_us),
            format!("{:.2}s", p.elapsed_s),
        ]
    };
    for r in runs {
        rows.push(row(&r.target, r.key(), &r.total));
        for p in &r.phases {
            rows.push(row("", format!("  {}", p.name), p));
        }
    }
    let mut out = render(&rows);
    for r in runs {
        if r.total.errors > 0 {
            let _ = writeln!(
                out,
                "WARNING: {} {}: {} of {} requests failed ({:?}); first: {}",
                r.target,
                r.key(),
                r.total.errors,
                r.total.requests,
                r.total.statuses,
                r.error_samples.first().map(String::as_str).unwrap_or("-")
            );
        }
        for n in r
            .notes
            .iter()
            .filter(|n| n.starts_with("VERIFY FAILED") || n.starts_with("INCOMPLETE"))
        {
            let _ = writeln!(out, "WARNING: {} {}: {n}", r.target, r.key());
        }
        if let Some(cpu) = &r.cpu {
            let mut parts = Vec::new();
            if let Some(us) = cpu.server_us {
                parts.push(format!("server {us:.0} µs"));
            }
            for (name, us) in &cpu.others {
                parts.push(format!("{name} {us:.0} µs"));
            }
            parts.push(format!("generator {:.0} µs", cpu.generator_us));
            let _ = writeln!(
                out,
                "{} {}: CPU per request: {}; machine idle {:.0} %",
                r.target,
                r.key(),
                parts.join(", "),
                cpu.idle_percent
            );
        }
        if let Some(m) = r.server {
            let _ = writeln!(
                out,
                "{} {}: server pid {} peak RSS (VmHWM) {:.1} MiB, RSS now {:.1} MiB",
                r.target,
                r.key(),
                m.pid,
                m.vm_hwm_kib as f64 / 1024.0,
                m.vm_rss_kib as f64 / 1024.0
            );
        }
    }
    out
}

/// Renders rows as aligned columns (first column left-aligned, the others right-aligned).
fn render<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            let pad = w - c.chars().count();
            if i <= 1 {
                line.push_str(c);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Whether a target is one of ours (`ours-sqlite`, `ours-postgres`).
fn is_ours(target: &str) -> bool {
    target.starts_with("ours")
}

/// The side-by-side comparison of many runs: req/s per workload and target, the ratios
/// ours / ceiling and ours / peer, and the targets checked one by one.
pub fn compare(runs: &[RunReport]) -> String {
    let mut targets: Vec<&str> = Vec::new();
    for r in runs {
        if !targets.contains(&r.target.as_str()) {
            targets.push(&r.target);
        }
    }
    // Order: ours first, then the ceiling, then the peer, then anything else.
    targets.sort_by_key(|t| {
        (
            if is_ours(t) {
                0
            } else if *t == "ceiling" {
                1
            } else if *t == "peer" {
                2
            } else {
                3
            },
            t.to_string(),
        )
    });
    // Rows: workload and size; the ceiling ignores data, so its runs fill every row of their
    // workload and make rows of their own only where nobody else ran that workload.
    let mut keys: Vec<(String, u64, String)> = Vec::new();
    for r in runs {
        let ceiling_only = r.target == "ceiling"
            && runs
                .iter()
                .any(|o| o.target != "ceiling" && o.workload == r.workload);
        let k = (r.workload.clone(), r.size.unwrap_or(0), r.key());
        if !ceiling_only && !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.sort_by_key(|a| (workload_order(&a.0), a.1));
    let find = |target: &str, key: &str| {
        runs.iter()
            .find(|r| r.target == target && r.key() == key)
            .or_else(|| {
                let w = key.split('@').next().unwrap_or(key);
                (target == "ceiling")
                    .then(|| runs.iter().find(|r| r.target == target && r.workload == w))
                    .flatten()
            })
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        "req/s (p99) per workload and target (W7: time and server peak memory); '!' marks runs with errors\n"
    );
    let mut head = vec!["workload".to_string()];
    head.extend(targets.iter().map(|t| t.to_string()));
    let mut rows = vec![head];
    for (_, _, key) in &keys {
        let mut row = vec![key.clone()];
        for t in &targets {
            row.push(match find(t, key) {
                Some(r) if r.workload == "W7" => format!(
                    "{:.1}s{}{}",
                    r.total.elapsed_s,
                    r.server
                        .map(|m| format!(" {:.0}MiB", m.vm_hwm_kib as f64 / 1024.0))
                        .unwrap_or_default(),
                    if r.total.errors > 0 || r.notes.iter().any(|n| n.starts_with("INCOMPLETE")) {
                        " !"
                    } else {
                        ""
                    }
                ),
                Some(r) => format!(
                    "{} ({}){}",
                    fmt_rps(r.total.rps),
                    fmt_us(r.total.latency.p99_us),
                    if r.total.errors > 0 { " !" } else { "" }
                ),
                None => "-".into(),
            });
        }
        rows.push(row);
    }
    out.push_str(&render_vec(&rows));

    // Ratios per workload id: ours at its smallest size against the ceiling and the peer
    // (whatever size they ran at: the ceiling ignores data, the peer runs small).
    let ours: Vec<&str> = targets.iter().copied().filter(|t| is_ours(t)).collect();
    let _ = writeln!(
        out,
        "\nratios of req/s (ours at its smallest size for each workload)\n"
    );
    let mut head = vec!["workload".to_string()];
    for o in &ours {
        head.push(format!("{o}/ceiling"));
        head.push(format!("{o}/peer"));
    }
    let mut rows = vec![head];
    let mut workloads: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    workloads.dedup();
    for w in workloads.iter().filter(|w| **w != "W7") {
        let smallest = |target: &str| {
            runs.iter()
                .filter(|r| r.target == target && r.workload == *w)
                .min_by_key(|r| r.size.unwrap_or(0))
        };
        let mut row = vec![w.to_string()];
        for o in &ours {
            let a = smallest(o);
            for other in ["ceiling", "peer"] {
                row.push(match (a, smallest(other)) {
                    (Some(a), Some(b)) if b.total.rps > 0.0 => {
                        let size =
                            |r: &RunReport| r.size.map(|s| s.to_string()).unwrap_or("-".into());
                        format!(
                            "{:.2} ({} vs {})",
                            a.total.rps / b.total.rps,
                            size(a),
                            size(b)
                        )
                    }
                    _ => "-".into(),
                });
            }
        }
        if row[1..].iter().any(|c| c != "-") {
            rows.push(row);
        }
    }
    out.push_str(&render_vec(&rows));

    let _ = writeln!(out, "\ntargets\n");
    for o in &ours {
        for line in targets_of(runs, o) {
            let _ = writeln!(out, "{o}: {line}");
        }
    }
    out
}

fn workload_order(w: &str) -> u32 {
    w.trim_start_matches('W').parse().unwrap_or(99)
}

fn render_vec(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let fixed: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.resize(n, String::new());
            r
        })
        .collect();
    let mut widths = vec![0usize; n];
    for r in &fixed {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &fixed {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
            let pad = w - c.chars().count();
            if i == 0 {
                line.push_str(c);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The targets for one of our targets, each as `met`, `NOT MET` or `not measured`.
pub fn targets_of(runs: &[RunReport], ours: &str) -> Vec<String> {
    let of = |target: &str, w: &str| -> Vec<&RunReport> {
        let mut v: Vec<&RunReport> = runs
            .iter()
            .filter(|r| r.target == target && r.workload == w)
            .collect();
        v.sort_by_key(|r| r.size.unwrap_or(0));
        v
    };
    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    // A run with errors, an unfinished cycle or a wrong answer proves nothing either way.
    let flawed = |rs: &[&RunReport]| {
        rs.iter().any(|r| {
            r.total.errors > 0
                || r.notes
                    .iter()
                    .any(|n| n.starts_with("INCOMPLETE") || n.starts_with("VERIFY FAILED"))
        })
    };
    let judged = |ok: bool, rs: &[&RunReport]| {
        if flawed(rs) {
            "NOT MET (a run had errors)".to_string()
        } else {
            verdict(ok).to_string()
        }
    };
    let mut out = Vec::new();
    let w1 = of(ours, "W1");
    let ceiling_w1 = of("ceiling", "W1");
    match (w1.first(), ceiling_w1.first()) {
        (Some(a), Some(c)) if c.total.rps > 0.0 => {
            let r = a.total.rps / c.total.rps;
            out.push(format!(
                "W1 >= 50% of ceiling req/s: {:.0}% -> {}",
                r * 100.0,
                judged(r >= 0.5, &[a, c])
            ));
        }
        _ => out.push("W1 >= 50% of ceiling req/s: not measured".into()),
    }
    let w2 = of(ours, "W2");
    // The filter at the largest size against `GET` on the same data when W1 ran there too
    // (the harness runs both on its largest database), else against the first W1.
    let w1_beside = |w2: &RunReport| {
        w1.iter()
            .find(|r| r.size.is_some() && r.size == w2.size)
            .or(w1.first())
            .copied()
    };
    match w2.last().map(|a| (a, w1_beside(a))) {
        Some((a, Some(b))) if b.total.rps > 0.0 => {
            let r = a.total.rps / b.total.rps;
            out.push(format!(
                "W2 at {} users within 80% of W1 at {} users: {:.0}% -> {}",
                a.size.unwrap_or(0),
                b.size.unwrap_or(0),
                r * 100.0,
                judged(r >= 0.8, &[a, b])
            ));
        }
        _ => out.push("W2 within 80% of W1: not measured".into()),
    }
    for w in ["W5", "W6"] {
        let v = of(ours, w);
        match (v.first(), v.last()) {
            (Some(small), Some(large)) if v.len() > 1 && large.total.rps > 0.0 => {
                let cost = small.total.rps / large.total.rps;
                let p50 =
                    large.total.latency.p50_us as f64 / small.total.latency.p50_us.max(1) as f64;
                out.push(format!(
                    "{w} cost at {} members <= 1.5x cost at {}: {:.2}x by req/s, {:.2}x by p50 -> {}",
                    large.size.unwrap_or(0),
                    small.size.unwrap_or(0),
                    cost,
                    p50,
                    judged(cost <= 1.5, &v)
                ));
            }
            _ => out.push(format!("{w} size independence: not measured")),
        }
    }
    match of(ours, "W7").last() {
        Some(r) => {
            let mem = r.server.map(|m| m.vm_hwm_kib as f64 / 1024.0);
            let incomplete = r.notes.iter().any(|n| n.starts_with("INCOMPLETE"));
            out.push(format!(
                "W7 ({} users) under 60 s: {:.1}s -> {}{}{}",
                r.size.unwrap_or(0),
                r.total.elapsed_s,
                judged(r.total.elapsed_s < 60.0 && !incomplete, &[r]),
                if r.total.errors > 0 {
                    " (with errors)"
                } else {
                    ""
                },
                if incomplete {
                    " (stopped at the time limit)"
                } else {
                    ""
                }
            ));
            out.push(match mem {
                Some(m) => format!(
                    "W7 server peak memory under 100 MB: {m:.1} MiB -> {}",
                    judged(m * 1.048_576 < 100.0, &[r])
                ),
                None => "W7 server peak memory: not measured".into(),
            });
        }
        None => out.push("W7: not measured".into()),
    }
    for w in ["W1", "W2", "W3", "W4", "W5"] {
        let a = of(ours, w);
        let p = of("peer", w);
        match (a.first(), p.first()) {
            (Some(a), Some(p)) if p.total.rps > 0.0 => {
                let r = a.total.rps / p.total.rps;
                out.push(format!(
                    "{w} >= 20x peer: {r:.1}x -> {}",
                    judged(r >= 20.0, &[a, p])
                ));
            }
            _ => out.push(format!("{w} >= 20x peer: not measured")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(target: &str, workload: &str, size: Option<u64>, rps: f64, p50: u64) -> RunReport {
        RunReport {
            format: REPORT_FORMAT,
            target: target.into(),
            workload: workload.into(),
            size,
            base_url: "http://127.0.0.1:1/scim/v2".into(),
            concurrency: 4,
            started_at: "2026-01-01T00:00:00Z".into(),
            total: PhaseReport {
                name: workload.into(),
                requests: 1000,
                errors: 0,
                elapsed_s: 1000.0 / rps,
                rps,
                latency: LatencySummary {
                    count: 1000,
                    mean_us: p50 as f64,
                    p50_us: p50,
                    p90_us: p50 * 2,
                    p99_us: p50 * 3,
                    max_us: p50 * 10,
                },
                statuses: BTreeMap::from([("200".into(), 1000)]),
            },
            phases: vec![],
            server: None,
            cpu: None,
            error_samples: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn formats_units() {
        assert_eq!(fmt_us(812), "812µs");
        assert_eq!(fmt_us(3_420), "3.4ms");
        assert_eq!(fmt_us(1_204_000), "1.20s");
        assert_eq!(fmt_rps(12345.6), "12346");
        assert_eq!(fmt_rps(12.34), "12.3");
    }

    #[test]
    fn table_lists_runs_and_warns_about_errors() {
        let mut r = run("ceiling", "W1", None, 20_000.0, 400);
        r.total.errors = 3;
        r.error_samples = vec!["500: boom".into()];
        let t = format_table(&[r, run("ours-sqlite", "W2", Some(10_000), 9_000.5, 900)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "target       workload  requests  errors  req/s    p50    p90    p99    max   time"
        );
        assert_eq!(
            lines[1],
            "ceiling      W1            1000       3  20000  400µs  800µs  1.2ms  4.0ms  0.05s"
        );
        assert!(lines[2].starts_with("ours-sqlite  W2@10000      1000       0   9000  900µs"));
        assert!(
            lines[3].starts_with("WARNING: ceiling W1: 3 of 1000 requests failed"),
            "{t}"
        );
        assert!(lines[3].ends_with("first: 500: boom"));
    }

    #[test]
    fn comparison_ratios_and_targets() {
        let runs = vec![
            run("ceiling", "W1", None, 20_000.0, 100),
            run("peer", "W1", Some(1000), 400.0, 5_000),
            run("ours-sqlite", "W1", Some(1000), 12_000.0, 300),
            run("ours-sqlite", "W2", Some(1000), 11_000.0, 300),
            run("ours-sqlite", "W2", Some(100_000), 9_000.0, 400),
            run("ours-sqlite", "W5", Some(10), 5_000.0, 700),
            run("ours-sqlite", "W5", Some(5_000), 2_000.0, 1_400),
        ];
        let text = compare(&runs);
        assert!(
            text.contains("W1@1000    12000 (900µs)  20000 (300µs)  400 (15.0ms)"),
            "{text}"
        );
        assert!(
            text.contains("W2@1000    11000 (900µs)              -"),
            "{text}"
        );
        assert!(text.contains("0.60 (1000 vs -)"), "{text}");
        assert!(text.contains("30.00 (1000 vs 1000)"), "{text}");
        let t = targets_of(&runs, "ours-sqlite");
        assert_eq!(t[0], "W1 >= 50% of ceiling req/s: 60% -> met");
        assert_eq!(
            t[1],
            "W2 at 100000 users within 80% of W1 at 1000 users: 75% -> NOT MET"
        );
        assert_eq!(
            t[2],
            "W5 cost at 5000 members <= 1.5x cost at 10: 2.50x by req/s, 2.00x by p50 -> NOT MET"
        );
        assert_eq!(t[3], "W6 size independence: not measured");
        assert_eq!(t[4], "W7: not measured");
        assert_eq!(t[5], "W1 >= 20x peer: 30.0x -> met");
        // With W1 measured at W2's largest size too, the filter is judged beside it.
        let mut beside = runs.clone();
        beside.push(run("ours-sqlite", "W1", Some(100_000), 10_000.0, 350));
        let t = targets_of(&beside, "ours-sqlite");
        assert_eq!(t[0], "W1 >= 50% of ceiling req/s: 60% -> met");
        assert_eq!(
            t[1],
            "W2 at 100000 users within 80% of W1 at 100000 users: 90% -> met"
        );
        // Errors make a comparison void, whatever the figures say.
        let mut runs = runs;
        runs[6].total.errors = 1;
        runs[6].total.rps = 4_000.0;
        let t = targets_of(&runs, "ours-sqlite");
        assert!(
            t[2].ends_with("1.25x by req/s, 2.00x by p50 -> NOT MET (a run had errors)"),
            "{}",
            t[2]
        );
    }

    #[test]
    fn parses_proc_status() {
        let text =
            "Name:\tscim-server\nVmPeak:\t  900 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(
            ServerMemory::parse(7, text),
            Some(ServerMemory {
                pid: 7,
                vm_hwm_kib: 51_234,
                vm_rss_kib: 40_000
            })
        );
        assert_eq!(ServerMemory::parse(7, "Name: x\n"), None);
    }

    #[test]
    fn cpu_per_request_by_process() {
        // A name with a space and a parenthesis; utime 250, stime 50.
        let stat = "42 (tokio (rt) x) S 1 42 42 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 3 0 \
                    100 2000 500";
        assert_eq!(
            parse_process_stat(stat),
            Some(("tokio (rt) x".to_string(), 300))
        );
        assert_eq!(parse_process_stat("42 (x) S 1"), None);
        assert_eq!(
            parse_machine_stat("cpu  100 0 50 800 40 0 10 0 0 0\ncpu0 1 2 3 4\n"),
            Some((1_000, 840))
        );

        let others = |entries: &[(u32, &str, u64)]| {
            entries
                .iter()
                .map(|(pid, name, t)| (*pid, (name.to_string(), *t)))
                .collect()
        };
        let start = CpuCounters {
            server: Some(1_000),
            generator: 10,
            others: others(&[(7, "postgres", 500), (8, "postgres", 100)]),
            machine: (10_000, 2_000),
        };
        // Backend 8 ended, backend 9 started; 2,000 requests over 400 machine ticks.
        let end = CpuCounters {
            server: Some(1_040),
            generator: 14,
            others: others(&[(7, "postgres", 530), (9, "postgres", 20)]),
            machine: (10_400, 2_100),
        };
        let cpu = start.per_request(&end, 2_000).unwrap();
        // 40 ticks of 10 ms over 2,000 requests: 200 µs each.
        assert_eq!(cpu.server_us, Some(200.0));
        assert_eq!(cpu.generator_us, 20.0);
        assert_eq!(cpu.others, vec![("postgres".to_string(), 250.0)]);
        assert_eq!(cpu.idle_percent, 25.0);
        assert_eq!(start.per_request(&end, 0), None);

        let mut r = run("ours-postgres", "W3", None, 3_000.0, 500);
        r.cpu = Some(cpu);
        let table = format_table(&[r]);
        assert!(
            table.contains(
                "ours-postgres W3: CPU per request: server 200 µs, postgres 250 µs, generator \
                 20 µs; machine idle 25 %"
            ),
            "{table}"
        );
    }
}
