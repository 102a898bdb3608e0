//! The `bridge` commands (in-process and through the real binary) and `serve`'s background
//! worker.

use super::*;

/// Runs the real binary with the test's configuration file; returns (success, stdout, stderr).
pub(super) fn binary(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scim-server"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("running scim-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `bridge plan`, `status`, `run --until-idle` and `dead-letters list` through the binary, on the
/// database the in-process server writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_through_the_binary() {
    let env = Env::start("apply").await;
    let ada = "ada@contoso.example";
    env.graph_user(ada);
    let id = env.create_user(ada, "Engineering", "Developer").await;
    env.drain().await;
    // a mover the worker has not seen yet
    env.patch_user(
        &id,
        json!([
            {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "IT"},
            {"op": "Replace", "path": "title", "value": "Support Agent"}
        ]),
    )
    .await;
    let config = env.config_path();
    let (config, id2) = (config.clone(), id.clone());
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || binary(&config, &["bridge", "plan", "--user", &id2]))
            .await
            .unwrap();
    assert!(ok, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(plan["kind"], "update");
    assert_eq!(plan["actual_known"], true);
    let ops: Vec<(&str, &str)> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["op"].as_str().unwrap(),
                s["group"].as_str().or(s["role"].as_str()).unwrap_or(""),
            )
        })
        .collect();
    for expected in [
        ("add_group", "support"),
        ("remove_group", "eng"),
        ("add_role", "helpdesk"),
        ("assign_licenses", ""),
    ] {
        assert!(ops.contains(&expected), "{expected:?} in {ops:?}");
    }
    // planning applied nothing
    assert!(env.graph(ada).groups.contains("eng"));

    let config = env.config_path();
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || binary(&config, &["bridge", "status"]))
            .await
            .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("mode: apply\n"), "{out}");
    assert!(out.contains("pending: 0 (leased 0, retrying 0)\n"), "{out}");
    assert!(out.contains("dead letters: 0\n"), "{out}");
    assert!(
        out.contains("outbox \"default\": consumed 1 of 2\n"),
        "{out}"
    );

    let config = env.config_path();
    let (ok, out, err) =
        tokio::task::spawn_blocking(move || binary(&config, &["bridge", "run", "--until-idle"]))
            .await
            .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("reconciled: 1\n"), "{out}");
    let v = env.graph(ada);
    assert_grants(
        &v,
        &["all-staff", "manual", "support"],
        &["e3"],
        &["helpdesk"],
    );

    let config = env.config_path();
    let (status, letters) = tokio::task::spawn_blocking(move || {
        (
            binary(&config, &["bridge", "status", "--json"]),
            binary(&config, &["bridge", "dead-letters", "list"]),
        )
    })
    .await
    .unwrap();
    assert!(status.0, "{}", status.2);
    let status: Value = serde_json::from_str(&status.1).expect("status JSON");
    assert_eq!(status["mode"], "apply");
    assert_eq!(status["cursors"][0]["last_seq"], 2);
    assert_eq!(status["dead_letters"], 0);
    assert!(letters.0, "{}", letters.2);
    assert_eq!(letters.1.lines().count(), 1, "header only: {}", letters.1);

    // a configuration without [graph]: a clear error naming the section
    let bare = env.dir.path().join("bare.toml");
    std::fs::write(
        &bare,
        format!("database_url = {:?}\n", env.config.database_url),
    )
    .unwrap();
    let (ok, _, err) = tokio::task::spawn_blocking(move || binary(&bare, &["bridge", "status"]))
        .await
        .unwrap();
    assert!(!ok);
    assert!(err.contains("[graph]"), "{err}");
    env.finish().await;
}

/// `serve` with `[graph]` runs the bridge worker next to the HTTP server (the hook-up in
/// `server::serve`), and stops it with the server on SIGTERM. The worker polls the outbox on its
/// own schedule, so this test polls the fake Graph a bounded number of times.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_bridge_worker() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let env = Env::start("apply").await;
    let mut child = crate::support::ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_scim-server"))
            .arg("--config")
            .arg(env.config_path())
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
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
    let Ok(base) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        panic!("scim-server serve did not report its address");
    };
    let res = env
        .http
        .post(format!("{base}/Users"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/scim+json")
        .body(
            json!({
                "schemas": [USER_URN, ENTERPRISE],
                "userName": "served@contoso.example",
                "active": true,
                ENTERPRISE: {"department": "Engineering"}
            })
            .to_string(),
        )
        .send()
        .await
        .expect("POST /Users");
    assert_eq!(res.status(), StatusCode::CREATED);
    let mut applied = false;
    for _ in 0..600 {
        applied = env.fake.with_directory(|d| {
            d.user_by_upn("served@contoso.example")
                .is_some_and(|u| d.licenses_of(&u).len() == 1 && d.groups_of(&u).len() == 2)
        });
        if applied {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The worker publishes the outbox position on /metrics every few seconds.
    let root = base.trim_end_matches("/scim/v2");
    let mut metrics = String::new();
    for _ in 0..300 {
        metrics = env
            .http
            .get(format!("{root}/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text");
        if metrics.contains("scim_outbox_lag{tenant=\"default\"} 0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metrics.contains("scim_outbox_lag{tenant=\"default\"} 0"),
        "outbox lag on /metrics once the worker caught up:\n{metrics}"
    );
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .expect("wait");
    assert!(applied, "serve's bridge worker reconciled the joiner");
    assert!(killed.is_ok_and(|s| s.success()));
    assert!(status.success(), "graceful exit: {status:?}");
    let v = env.graph("served@contoso.example");
    assert_grants(&v, &["all-staff", "eng"], &["e5"], &[]);
    env.finish().await;
}

/// A permanent Graph error dead-letters the user at once; `bridge dead-letters list` shows it and
/// `retry --all` queues it again once the cause is fixed. `reconcile --user` queues one user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_list_and_retry() {
    use scim_graph_bridge::fake_graph::Fault;
    use scim_server::bridge::cli::DeadLettersCommand;
    let env = Env::start("apply").await;
    env.fake.inject(Fault {
        path_contains: "/assignLicense".into(),
        times: 10_000,
        status: 400,
        message: Some("Subscription with SKU x does not have any available licenses.".into()),
        ..Fault::default()
    });
    let id = env
        .create_user("nolic@contoso.example", "Engineering", "Developer")
        .await;
    let s = env.drain().await;
    assert_eq!(s.dead_lettered, 1, "{s:?}");
    let (code, out) = env
        .cli(BridgeCommand::DeadLetters(DeadLettersCommand::List {
            tenant: Some(TENANT.into()),
            json: true,
        }))
        .await;
    assert_eq!(code, ExitCode::SUCCESS);
    let letters: Value = serde_json::from_str(&out).expect("dead letters JSON");
    assert_eq!(letters.as_array().map(Vec::len), Some(1), "{letters}");
    assert_eq!(letters[0]["user_id"], id.as_str());
    let reason = letters[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("permanent:") && reason.contains("available licenses"),
        "{reason}"
    );
    let (_, text) = env.cli(BridgeCommand::Status { json: false }).await;
    assert!(text.contains("dead letters: 1\n"), "{text}");

    // an unknown id fails without touching the others
    let (code, _) = env
        .cli(BridgeCommand::DeadLetters(DeadLettersCommand::Retry {
            id: Some("no-such-letter".into()),
            all: false,
        }))
        .await;
    assert_eq!(code, ExitCode::FAILURE);

    env.fake.clear_faults();
    let (code, out) = env
        .cli(BridgeCommand::DeadLetters(DeadLettersCommand::Retry {
            id: None,
            all: true,
        }))
        .await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(env.drain().await.completed, 1);
    assert_grants(
        &env.graph("nolic@contoso.example"),
        &["all-staff", "eng"],
        &["e5"],
        &[],
    );
    let (_, text) = env.cli(BridgeCommand::Status { json: false }).await;
    assert!(text.contains("dead letters: 0\n"), "{text}");

    // one user on demand: converged already, so no Graph write
    env.fake.clear_log();
    let (code, out) = env
        .cli(BridgeCommand::Reconcile {
            all: false,
            user: Some(id.clone()),
            tenant: None,
        })
        .await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(out.contains("queued"), "{out}");
    assert_eq!(env.drain().await.completed, 1);
    assert!(env.fake.writes().is_empty(), "{:?}", env.fake.writes());
    assert_eq!(
        env.last_plan(&id).await,
        ("apply".into(), "noop".into(), "update".into())
    );
    env.finish().await;
}
