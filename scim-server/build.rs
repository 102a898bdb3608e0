//! Records the commit the binary was built from, for `scim-server --version`.
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
