//! Records the commit the binary was built from, for `scim-server --version`, and rebuilds
//! the crate when a migration is added.
//!
//! `SCIM_SERVER_COMMIT` wins when set (a release build from a source archive); otherwise
//! `git rev-parse`; outside a git checkout (a crates.io package, a tarball) the commit is
//! "unknown" rather than a build failure.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SCIM_SERVER_COMMIT");
    // `sqlx::migrate!` embeds the migration files at compile time, but a build script that
    // names what it depends on replaces cargo's default of watching the whole package: without
    // this a new migration file was not built in until some source file changed.
    println!("cargo:rerun-if-changed=migrations");
    let commit = std::env::var("SCIM_SERVER_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            // Rebuild when a commit is made or checked out (the HEAD reflog grows with both).
            if let Some(log) = git(&[
                "rev-parse",
                "--path-format=absolute",
                "--git-path",
                "logs/HEAD",
            ]) {
                println!("cargo:rerun-if-changed={log}");
            }
            if let Some(head) = git(&["rev-parse", "--path-format=absolute", "--git-path", "HEAD"])
            {
                println!("cargo:rerun-if-changed={head}");
            }
            git(&["rev-parse", "--short=12", "HEAD"])
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SCIM_SERVER_COMMIT={commit}");
}
