//! Through the real binary, on SQLite and PostgreSQL: `serve` answers the grants API and its
//! bridge worker grants an approved role in the fake Graph; after `serve` stopped, the
//! `governance grant` and `governance hygiene` commands read what it stored.

use super::*;
use crate::support::ChildGuard;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn command(config: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_scim-server"));
    c.arg("--config")
        .arg(config)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

/// Runs a command of the binary; returns (success, stdout, stderr).
async fn run(config: std::path::PathBuf, args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = command(&config)
            .args(&args)
            .output()
            .expect("running scim-server");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("join")
}

async fn served_grant(postgres: bool) {
    let Some(db) = Db::new(postgres).await else {
        eprintln!("PostgreSQL not available: skipped");
        return;
    };
    let fake = FakeGraph::start(FakeConfig::default()).await.expect("fake");
    let cat = Catalog::seed(&fake, 100);
    let rules = db.dir().join("graph-rules.toml");
    std::fs::write(&rules, cat.rules_toml(true, "e5", "")).expect("rules");
    let config = db.dir().join("scim.toml");
    std::fs::write(&config, config_text(&fake, &db, &rules)).expect("config");
    let http = reqwest::Client::new();
    let mut child = ChildGuard(
        command(&config)
            .arg("serve")
            .env("SCIM_LISTEN", "127.0.0.1:0")
            .env("SCIM_SHUTDOWN_GRACE_SECONDS", "5")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning scim-server serve"),
    );
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("scim-server listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve reported its address");
    let root = base.trim_end_matches("/scim/v2").to_string();
    let call = |method: reqwest::Method, path: String, body: Value| {
        let req = http
            .request(method, format!("{root}{path}"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string());
        async move {
            let res = req.send().await.expect("request");
            let status = res.status();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (mgr, ada) = ("mgr@contoso.example", "ada@contoso.example");
    for upn in [mgr, ada] {
        fake.with_directory(|d| {
            d.add_user(
                json!({"userPrincipalName": upn, "displayName": upn, "mailNickname": "x",
                              "usageLocation": "US"}),
            )
        });
    }
    let (_, m) = call(
        reqwest::Method::POST,
        "/scim/v2/Users".into(),
        json!({"schemas": [USER_URN], "userName": mgr, "active": true}),
    )
    .await;
    let mgr_id = m["id"].as_str().expect("manager created").to_string();
    let (_, a) = call(
        reqwest::Method::POST,
        "/scim/v2/Users".into(),
        json!({"schemas": [USER_URN, ENTERPRISE], "userName": ada, "active": true,
               "title": "Support Agent",
               ENTERPRISE: {"department": "IT", "manager": {"value": mgr_id}}}),
    )
    .await;
    let ada_id = a["id"].as_str().expect("user created").to_string();
    let (status, g) = call(
        reqwest::Method::POST,
        "/governance/v1/grants".into(),
        json!({"user": ada_id, "grant": "role:helpdesk", "duration": "PT4H",
               "justification": "incident INC-7"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{g}");
    let id = g["id"].as_str().unwrap().to_string();
    let (status, g) = call(
        reqwest::Method::POST,
        format!("/governance/v1/grants/{id}/approve"),
        json!({"approver": mgr}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    // serve's bridge worker runs on its own schedule: poll the fake Graph (bounded)
    let mut granted = false;
    for _ in 0..600 {
        granted = fake.with_directory(|d| {
            d.user_by_upn(ada)
                .is_some_and(|u| d.roles_of(&u).iter().any(|(def, _)| def == HELPDESK_ROLE))
        });
        if granted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // the schedule worker publishes the hygiene report's and the grants' gauges; its first
    // report reads every user and Graph, which on a loaded CI machine took over 15 s once, and a
    // failed first pass is retried after the poll interval (bounded at 180 s)
    let mut metrics = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while std::time::Instant::now() < deadline {
        metrics = http
            .get(format!("{root}/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics");
        if metrics.contains("scim_governance_jit_grants{status=\"active\"} 1")
            && metrics.contains("scim_governance_stale_accounts{tenant=\"default\"}")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .expect("wait");
    assert!(granted, "serve's bridge granted the approved role");
    assert!(
        metrics.contains("scim_governance_jit_grants{status=\"active\"} 1")
            && metrics.contains("scim_governance_stale_accounts{tenant=\"default\"}"),
        "{metrics}"
    );
    assert!(status.success(), "graceful exit: {status:?}");

    let (ok, out, err) = run(
        config.clone(),
        ["governance", "grant", "list", "--status", "active"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(list[0]["id"], id.as_str(), "{out}");
    assert_eq!(list[0]["decidedBy"], mgr_id.as_str());
    let (ok, out, err) = run(
        config.clone(),
        ["governance", "hygiene", "--format", "csv"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.starts_with("category,user_id,"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("privileged,") && l.contains("via jit")),
        "{out}"
    );
    // a bad request through the CLI is an error naming the field, not a panic
    let (ok, _, err) = run(
        config,
        [
            "governance",
            "grant",
            "request",
            "--user",
            &ada_id,
            "--grant",
            "role:helpdesk",
            "--duration",
            "PT12H",
            "--justification",
            "x",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(!ok);
    assert!(err.contains("longer than the policy allows"), "{err}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_grants_and_the_cli_reads_it() {
    served_grant(false).await;
    served_grant(true).await;
}
