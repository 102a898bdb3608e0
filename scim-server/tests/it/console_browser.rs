//! Browser journeys through the real binary: `tests/browser/journeys.mjs` starts a real OpenID
//! provider (`oidc-provider`) and this binary with `[console.oidc]`, and drives Debian's headless
//! Chromium with `playwright-core`: OpenID Connect sign-in, dashboard, search, a person's page,
//! token creation, CSRF refusals, a viewer's 403 on every token action, sign-out. It saves a
//! screenshot of each main page to `docs/console/`.
//!
//! Needs `node`, `/usr/bin/chromium` (or `CHROMIUM`) and `npm ci` in `tests/browser` (`.ci/run`
//! installs all three). Under CI (`CI` set) a missing piece fails the test; on a developer's
//! machine without them the test says what is missing and passes without running.

use crate::support::ChildGuard;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn missing_prerequisite() -> Option<String> {
    let dir = browser_dir();
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    if !dir.join("node_modules/playwright-core").is_dir()
        || !dir.join("node_modules/oidc-provider").is_dir()
    {
        return Some(format!("run `npm ci` in {}", dir.display()));
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} is missing (apt-get install chromium)"));
    }
    None
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[test]
fn console_journeys_in_chromium() {
    if let Some(missing) = missing_prerequisite() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the browser journeys must run in CI: {missing}"
        );
        eprintln!("console browser journeys not run: {missing}");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/console");
    let mut child = ChildGuard(
        Command::new("node")
            .arg("journeys.mjs")
            .current_dir(browser_dir())
            .env("SCIM_SERVER_BIN", env!("CARGO_BIN_EXE_scim-server"))
            .env("SCIM_WORK_DIR", work.path())
            .env("SCREENSHOT_DIR", &screenshots)
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting node"),
    );
    // Bounded: the journeys take seconds; a hung browser must not hang CI.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the browser journeys did not finish in 300 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "browser journeys failed ({status}); see the output above"
    );
}
