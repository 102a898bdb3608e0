//! Browser journeys through the real binary: `tests/browser/journeys.mjs` starts a real OpenID
//! provider (`oidc-provider`) and this binary with `[console.oidc]` and `[graph]` (against the
//! fake Microsoft Graph this test starts on loopback, in apply mode), and drives Debian's
//! headless Chromium with `playwright-core`: OpenID Connect sign-in, dashboard, search, a
//! person's page, a new hire whose bridge plan appears on their page, a termination showing the
//! leaver steps, token creation, CSRF refusals, a viewer's 403 on every action, sign-out; and
//! (`tests/browser/governance.mjs`, with `[governance]` and a time-bound grant policy) an
//! approver deciding access review items in their inbox, one and two at once, and approving a
//! time-bound grant an operator asked for; the hygiene report and leaver evidence downloaded.
//!
//! It saves a screenshot of each main page under the target directory
//! (`target/tmp/console-screenshots/`); with `SCIM_UPDATE_SCREENSHOTS=1` it also copies them
//! to `docs/console/` (the README's pictures), so an ordinary run leaves the tree unchanged.
//!
//! Needs `node`, `/usr/bin/chromium` (or `CHROMIUM`) and `npm ci` in `tests/browser` (`.ci/run`
//! installs all three). Under CI (`CI` set) a missing piece fails the test; on a developer's
//! machine without them the test says what is missing and passes without running.

use crate::support::ChildGuard;
use scim_graph_bridge::fake_graph::fixtures::DemoCatalog;
use scim_graph_bridge::fake_graph::{FakeConfig, FakeGraph};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_journeys_in_chromium() {
    if let Some(missing) = missing_prerequisite() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the browser journeys must run in CI: {missing}"
        );
        eprintln!("console browser journeys not run: {missing}");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    // The fake Graph the server's bridge applies plans to, with the demo catalog.
    let fake = FakeGraph::start(FakeConfig::default())
        .await
        .expect("fake graph");
    let catalog = DemoCatalog::seed(&fake, 100);
    let rules = work.path().join("graph-rules.toml");
    std::fs::write(&rules, catalog.rules_toml(true, "e5", "")).unwrap();
    let cfg = fake.config();
    let graph_section = format!(
        "[graph]\ntenant_id = {:?}\nclient_id = {:?}\nclient_secret = {:?}\nmode = \"apply\"\n\
         authority_url = {:?}\ngraph_url = {:?}\nrules = {:?}\nwrites_per_second = 1000.0\n\
         write_burst = 1000\n",
        cfg.tenant_id,
        cfg.client_id,
        cfg.client_secret.clone().unwrap_or_default(),
        fake.authority_url(),
        fake.graph_url(),
        rules.display().to_string(),
    );
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let mut child = ChildGuard(
        Command::new("node")
            .arg("journeys.mjs")
            .current_dir(browser_dir())
            .env("SCIM_SERVER_BIN", env!("CARGO_BIN_EXE_scim-server"))
            .env("SCIM_WORK_DIR", work.path())
            .env("SCREENSHOT_DIR", &screenshots)
            .env("GRAPH_SECTION", &graph_section)
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
        // The fake Graph runs on this runtime: wait without blocking it.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        status.success(),
        "browser journeys failed ({status}); see the output above"
    );
    assert!(
        fake.writes()
            .iter()
            .any(|w| w.path.contains("revokeSignInSessions")),
        "the termination reached the fake Graph as leaver steps"
    );
    if std::env::var("SCIM_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/console");
        for entry in std::fs::read_dir(&screenshots).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "png") {
                std::fs::copy(&path, docs.join(path.file_name().unwrap())).unwrap();
            }
        }
        eprintln!("screenshots copied to {}", docs.display());
    }
}
