//! Runs the selected checks in order and collects a [`Report`].

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use crate::checks::{Check, registry};
use crate::config::{Profile, RunConfig};
use crate::ctx::{Ctx, Stop};
use crate::report::{CheckResult, Failure, Outcome, Report, format_result};

/// Runs the checks selected by `config` against the server and returns the report.
///
/// Blocking: it drives its own single-threaded I/O runtime, so call it from a plain
/// thread, or use [`run_async`] from inside a Tokio runtime. When the base URL is
/// invalid, the report holds one failed result saying so.
pub fn run(config: &RunConfig) -> Report {
    run_with(config, registry())
}

/// [`run`] from async code: runs on a blocking thread of the current Tokio runtime.
pub async fn run_async(config: RunConfig) -> Report {
    let base = config.base_url.clone();
    tokio::task::spawn_blocking(move || run(&config))
        .await
        .unwrap_or_else(|e| Report {
            base_url: base,
            run_id: String::new(),
            results: vec![internal_failure(format!("the run panicked: {e}"))],
        })
}

fn internal_failure(msg: String) -> CheckResult {
    CheckResult {
        id: "runner.setup".into(),
        area: "runner".into(),
        title: "Runner set-up".into(),
        reference: "scim-conformance".into(),
        profile: Profile::All,
        outcome: Outcome::Fail(Failure {
            request: None,
            expected: "a usable configuration".into(),
            actual: msg,
        }),
        duration_ms: 0,
    }
}

/// Runs the given checks (a subset of [`registry`], or your own) with `config`.
pub fn run_with(config: &RunConfig, checks: Vec<Check>) -> Report {
    let mut ctx = match Ctx::new(config) {
        Ok(c) => c,
        Err(e) => {
            let report = Report {
                base_url: config.base_url.clone(),
                run_id: String::new(),
                results: vec![internal_failure(e.to_string())],
            };
            if config.verbose {
                print!("{}", report.to_text());
            }
            return report;
        }
    };
    let mut report = Report {
        base_url: ctx.base().to_string(),
        run_id: ctx.run_id.clone(),
        results: Vec::new(),
    };
    for check in checks
        .iter()
        .filter(|c| config.profile.includes(c.profile) && config.selects(c.id))
    {
        let started = Instant::now();
        let outcome = run_one(&mut ctx, check);
        ctx.cleanup_check();
        let result = CheckResult {
            id: check.id.to_string(),
            area: check.area.name().to_string(),
            title: check.title.to_string(),
            reference: check.reference.to_string(),
            profile: check.profile,
            outcome,
            duration_ms: started.elapsed().as_millis(),
        };
        if config.verbose {
            print!("{}", format_result(&result));
            let _ = std::io::stdout().flush();
        }
        report.results.push(result);
    }
    ctx.cleanup_run();
    report
}

fn run_one(ctx: &mut Ctx, check: &Check) -> Outcome {
    if check.profile == Profile::Rfc {
        for f in &check.requires {
            if ctx.declared(f.key()) == Some(false) {
                return Outcome::Skip(format!("ServiceProviderConfig {}.supported=false", f.key()));
            }
        }
    }
    match std::panic::catch_unwind(AssertUnwindSafe(|| (check.run)(ctx))) {
        Ok(Ok(())) => Outcome::Pass,
        Ok(Err(Stop::Skip(reason))) => Outcome::Skip(reason),
        Ok(Err(Stop::Fail(f))) => Outcome::Fail(f),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Outcome::Fail(Failure {
                request: None,
                expected: "the check to complete".into(),
                actual: format!("runner bug: panic: {msg}"),
            })
        }
    }
}
