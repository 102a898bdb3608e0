//! The mass-change guard end to end: SCIM deactivations over HTTP -> change log -> the bridge
//! worker with a limit of 3 leaver actions -> the fake Graph. Four leavers in the window: three
//! accounts are disabled, the fourth plan is held (no Graph write for it, an alert raised, the
//! hold kept across a new worker); `bridge hold approve` through the real binary lets it through;
//! a second wave after that decision is counted afresh, and `bridge hold reject` keeps its held
//! account enabled for good. On SQLite and PostgreSQL (where the worker reconciles four users in
//! parallel, so the count is contended).

use super::commands::binary;
use super::*;
use scim_graph_bridge::guard::{GuardAlert, HoldStatus};
use scim_graph_bridge::notify::{BridgeEvents, Settled};
use scim_server::bridge::cli::{HoldCommand, HoldDecision};
use std::sync::Mutex;

/// Records what the worker reports.
#[derive(Default)]
struct Recorder {
    alerts: Mutex<Vec<GuardAlert>>,
    settled: Mutex<Vec<Settled>>,
}

#[async_trait::async_trait]
impl BridgeEvents for Recorder {
    async fn settled(&self, s: &Settled) -> scim_graph_bridge::Result<()> {
        self.settled.lock().unwrap().push(s.clone());
        Ok(())
    }
    async fn guard_tripped(&self, a: &GuardAlert) -> scim_graph_bridge::Result<()> {
        self.alerts.lock().unwrap().push(a.clone());
        Ok(())
    }
}

const LIMIT: u32 = 3;

/// A worker of `ctx` whose guard lets [`LIMIT`] leaver actions through per window (set as an
/// operator would, with `SCIM_GRAPH_GUARD_MAX_LEAVERS`).
fn guarded_worker(ctx: &BridgeContext, events: Arc<Recorder>) -> Worker {
    let mut graph = ctx.graph.clone();
    graph
        .apply_env([("SCIM_GRAPH_GUARD_MAX_LEAVERS", LIMIT.to_string())])
        .expect("override");
    graph.validate().expect("valid");
    let from_config = WorkerConfig::from_graph_config(&graph);
    assert_eq!(
        from_config.guard.as_ref().map(|g| g.max_leavers),
        Some(LIMIT)
    );
    ctx.worker(WorkerConfig {
        guard: from_config.guard,
        ..test_worker_config()
    })
    .with_events(events)
}

/// Creates `n` users (the bridge creates them in Graph) and returns (upn, SCIM id) pairs.
async fn staff(env: &Env, prefix: &str, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let upn = format!("{prefix}{i}@contoso.example");
        let id = env.create_user(&upn, "Engineering", "Developer").await;
        out.push((upn, id));
    }
    env.drain().await;
    for (upn, _) in &out {
        assert!(env.graph(upn).enabled, "{upn} is active in Graph");
    }
    out
}

async fn deactivate(env: &Env, users: &[(String, String)]) {
    for (_, id) in users {
        env.patch_user(
            id,
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .await;
        // the SCIM write lands whatever the guard later decides
        let (_, body) = env
            .scim(reqwest::Method::GET, &format!("/Users/{id}"), None)
            .await;
        assert_eq!(body["active"], false, "{body}");
    }
}

/// Graph writes naming `graph_id` (in the path, or inside a `$batch` body) since the log was
/// cleared.
fn writes_for(env: &Env, graph_id: &str) -> usize {
    env.fake
        .writes()
        .iter()
        .filter(|r| {
            r.path.contains(graph_id)
                || r.body
                    .as_ref()
                    .is_some_and(|b| b.to_string().contains(graph_id))
        })
        .count()
}

async fn drain_with(worker: &Worker) -> RoundStats {
    run_until_idle(worker, 50).await.expect("drain")
}

async fn mass_leavers_wait_for_an_operator(env: Env) {
    let first = staff(&env, "wave1-", LIMIT as usize + 1).await;
    let events = Arc::new(Recorder::default());
    let worker = guarded_worker(&env.ctx, events.clone());
    deactivate(&env, &first).await;
    let stats = drain_with(&worker).await;
    assert_eq!(
        (stats.completed, stats.held),
        (LIMIT as usize, 1),
        "{stats:?}"
    );
    let disabled: Vec<&String> = first
        .iter()
        .filter(|(upn, _)| !env.graph(upn).enabled)
        .map(|(upn, _)| upn)
        .collect();
    assert_eq!(disabled.len(), LIMIT as usize, "{disabled:?}");
    let holds = env
        .ctx
        .store
        .holds(Some(TENANT), true)
        .await
        .expect("holds");
    assert_eq!(holds.len(), 1, "{holds:?}");
    let held = &holds[0];
    let (held_upn, _) = first
        .iter()
        .find(|(_, id)| *id == held.user_id)
        .expect("the held user is one of the wave");
    assert!(env.graph(held_upn).enabled, "held: still enabled in Graph");
    assert!(held.reason.contains("limit is 3"), "{}", held.reason);
    assert_eq!(env.last_plan(&held.user_id).await.1, "held");
    // one alert for the wave, naming the held plan
    let alerts = events.alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].hold_id, held.id);
    // the three applied plans were reported settled; the held one was not
    assert_eq!(events.settled.lock().unwrap().len(), LIMIT as usize);

    // Nothing reaches Graph for the held user however often the worker runs, even for a new
    // change of that user (re-planned, held again under the same hold).
    let graph_id = env.graph(held_upn).id;
    env.fake.clear_log();
    env.patch_user(
        &held.user_id,
        json!([{"op": "Replace", "path": "title", "value": "Leaving"}]),
    )
    .await;
    let stats = drain_with(&worker).await;
    assert_eq!(stats.held, 1, "{stats:?}");
    assert_eq!(writes_for(&env, &graph_id), 0, "{:?}", env.fake.writes());
    let again = env
        .ctx
        .store
        .holds(Some(TENANT), true)
        .await
        .expect("holds");
    assert_eq!((again.len(), &again[0].id), (1, &held.id));
    assert_eq!(events.alerts.lock().unwrap().len(), 1, "one alert per wave");

    // `bridge status` and `hold list` show it; a fresh context (a restart) finds the hold.
    let (_, status) = env.cli(BridgeCommand::Status { json: false }).await;
    assert!(
        status.contains("held by the mass-change guard: 1"),
        "{status}"
    );
    let config = env.config_path();
    let listed = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || binary(&config, &["bridge", "hold", "list", "--json"]))
            .await
            .unwrap()
    };
    assert!(listed.0, "{}", listed.2);
    let listed: Value = serde_json::from_str(&listed.1).expect("json");
    assert_eq!(listed[0]["id"], held.id.as_str());
    assert_eq!(listed[0]["status"], "held");

    let (_, text) = env
        .cli(BridgeCommand::Hold(HoldCommand::List {
            tenant: None,
            all: false,
            json: false,
        }))
        .await;
    assert!(text.contains(&held.id), "{text}");
    assert!(text.contains("disable_account"), "the held steps: {text}");
    assert!(text.contains("why: "), "{text}");

    // Approve through the real binary; a new worker (as after a restart) applies it.
    let id = held.id.clone();
    let approved = tokio::task::spawn_blocking(move || {
        binary(
            &config,
            &["bridge", "hold", "approve", &id, "--by", "ops@contoso"],
        )
    })
    .await
    .unwrap();
    assert!(approved.0, "{}", approved.2);
    assert!(approved.1.contains("approved"), "{}", approved.1);
    let restarted = BridgeContext::open(
        &env.graph,
        &env.database_url(),
        env.store.clone(),
        Arc::new(scim_core::schema::SchemaRegistry::builtin()),
        Arc::new(SystemClock),
    )
    .await
    .expect("bridge context");
    let worker = guarded_worker(&restarted, events.clone());
    let stats = drain_with(&worker).await;
    assert_eq!((stats.completed, stats.held), (1, 0), "{stats:?}");
    assert!(!env.graph(held_upn).enabled, "approved: disabled in Graph");
    let all = env
        .ctx
        .store
        .holds(Some(TENANT), false)
        .await
        .expect("holds");
    assert_eq!(all[0].status, HoldStatus::Applied);
    assert_eq!(all[0].decided_by.as_deref(), Some("ops@contoso"));

    // A second wave after the decision is counted afresh: three pass, one is held; rejected,
    // it is never applied.
    let second = staff(&env, "wave2-", LIMIT as usize + 1).await;
    deactivate(&env, &second).await;
    let stats = drain_with(&worker).await;
    assert_eq!(
        (stats.completed, stats.held),
        (LIMIT as usize, 1),
        "{stats:?}"
    );
    assert_eq!(
        events.alerts.lock().unwrap().len(),
        2,
        "a new wave, a new alert"
    );
    let held = env
        .ctx
        .store
        .holds(Some(TENANT), true)
        .await
        .expect("holds")[0]
        .clone();
    let (held_upn, _) = second
        .iter()
        .find(|(_, id)| *id == held.user_id)
        .expect("held user");
    let (code, out) = env
        .cli(BridgeCommand::Hold(HoldCommand::Reject(HoldDecision {
            ids: Vec::new(),
            all: true,
            tenant: Some(TENANT.into()),
            by: Some("ops@contoso".into()),
        })))
        .await;
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.contains("rejected"), "{out}");
    env.fake.clear_log();
    let stats = drain_with(&worker).await;
    assert_eq!(stats.claimed, 0, "a rejection queues nothing: {stats:?}");
    let graph_id = env.graph(held_upn).id;
    assert_eq!(writes_for(&env, &graph_id), 0);
    assert!(env.graph(held_upn).enabled, "rejected: left enabled");
    let rejected: Vec<_> = env
        .ctx
        .store
        .holds(Some(TENANT), false)
        .await
        .expect("holds")
        .into_iter()
        .filter(|h| h.status == HoldStatus::Rejected)
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].decided_by.as_deref(), Some("ops@contoso"));
    // Both decisions are audit events in the tenant's hash-chained change log.
    let decided: Vec<String> = env
        .store
        .changes_after(TENANT, 0, 10_000)
        .await
        .expect("change log")
        .into_iter()
        .filter(|r| r.operation == "event" && r.change_json.contains("bridge.hold_decided"))
        .map(|r| format!("{} {}", r.principal, r.resource_id))
        .collect();
    assert_eq!(
        decided,
        [
            format!("operator:ops@contoso {}", all[0].user_id),
            format!("operator:ops@contoso {}", rejected[0].user_id),
        ],
        "{decided:?}"
    );
    // Unknown ids are refused with a failing exit code.
    let (code, _) = env
        .cli(BridgeCommand::Hold(HoldCommand::Approve(HoldDecision {
            ids: vec!["no-such-hold".into()],
            all: false,
            tenant: None,
            by: None,
        })))
        .await;
    assert_eq!(code, ExitCode::FAILURE);
    drop(restarted);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_mass_leavers_wait_for_an_operator() {
    mass_leavers_wait_for_an_operator(Env::start("apply").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_mass_leavers_wait_for_an_operator() {
    let Some(base) = postgres_base().await else {
        return;
    };
    mass_leavers_wait_for_an_operator(Env::start_on("apply", Some(base)).await).await;
}

/// Through the real binary: `serve` with `[graph.guard] max_leavers = 1` and an outcome callback.
/// An HR system hires two people and then terminates both (bulkUpload): one account is disabled,
/// the other held; the receiver gets the jobs' reports, the bridge's reports and the
/// `guard.tripped` alert, `/metrics` counts the trip and the held plan; `bridge hold approve
/// --all` (the binary again, next to the running server) lets serve's worker disable the second
/// account, which is reported too. `serve` works on its own schedule, so this test polls (bounded).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_holds_a_mass_termination_and_reports_it() {
    use crate::callbacks::{Receiver, callback_config};
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let env = Env::start("apply").await;
    let receiver = Receiver::start(Arc::new(SystemClock)).await;
    let cb = callback_config(&receiver.url);
    let mut text = std::fs::read_to_string(env.config_path()).expect("config");
    text.push_str(&format!(
        "[graph.guard]\nmax_leavers = 1\n[[inbound.callbacks]]\ntenant = {:?}\nurl = {:?}\nsecrets = [{:?}]\nbackoff_base_seconds = 1\n",
        cb.tenant,
        cb.url,
        cb.secrets[0].expose()
    ));
    std::fs::write(env.config_path(), &text).expect("config");
    let parsed = Config::from_parts(Some(&text), &[]).expect("config with the guard");
    let graph = parsed.graph_config(&[]).expect("valid").expect("[graph]");
    assert_eq!(graph.guard.max_leavers, 1);

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
        panic!("scim-server serve did not report its address");
    };
    let root = base.trim_end_matches("/scim/v2").to_string();
    let upload = |records: Vec<Value>| {
        let ops: Vec<Value> = records
            .into_iter()
            .map(|d| json!({"method": "POST", "path": "/Users", "bulkId": d["externalId"], "data": d}))
            .collect();
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})
    };
    let post = |body: Value| {
        env.http
            .post(format!("{root}/inbound/v1/bulkUpload"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let types = || -> Vec<String> {
        receiver
            .seen()
            .iter()
            .map(|r| {
                assert!(r.signed, "{r:?}");
                r.body["type"].as_str().unwrap_or_default().to_string()
            })
            .collect()
    };
    let wait_for = |what: &'static str, done: &dyn Fn() -> bool| {
        let ok = (0..600).any(|_| {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
            false
        });
        assert!(ok, "timed out waiting for {what}: {:?}", types());
    };
    let people = ["kim.e2e@contoso.example", "lee.e2e@contoso.example"];
    let hires: Vec<Value> = people
        .iter()
        .enumerate()
        .map(|(i, upn)| {
            json!({"externalId": format!("E-{i}"), "userName": upn,
                               ENTERPRISE: {"department": "Engineering"}})
        })
        .collect();
    let res = post(upload(hires)).await.expect("bulkUpload");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let count = |t: &str| types().iter().filter(|x| *x == t).count();
    tokio::task::block_in_place(|| {
        wait_for("the hires reported", &|| count("provisioning.applied") == 2)
    });
    assert_eq!(count("job.completed"), 1);
    for upn in people {
        assert!(env.graph(upn).enabled);
    }

    let leavers: Vec<Value> = people
        .iter()
        .enumerate()
        .map(|(i, upn)| json!({"externalId": format!("E-{i}"), "userName": upn, "active": false}))
        .collect();
    let res = post(upload(leavers)).await.expect("bulkUpload");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    tokio::task::block_in_place(|| {
        wait_for("the alert", &|| {
            count("guard.tripped") == 1 && count("provisioning.applied") == 3
        })
    });
    assert_eq!(count("job.completed"), 2);
    let disabled = people.iter().filter(|u| !env.graph(u).enabled).count();
    assert_eq!(disabled, 1, "one disabled, one held");
    let alert = receiver
        .seen()
        .into_iter()
        .find(|r| r.body["type"] == "guard.tripped")
        .expect("alert");
    assert!(
        alert.body["data"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("limit is 1"),
        "{:?}",
        alert.body
    );
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
        if metrics.contains("scim_bridge_held_plans 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metrics.contains("scim_bridge_guard_trips_total{tenant=\"default\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("scim_bridge_held_plans 1"), "{metrics}");

    // The operator approves with the binary while serve runs; serve's worker applies it.
    let config = env.config_path();
    let approved = tokio::task::spawn_blocking(move || {
        binary(
            &config,
            &["bridge", "hold", "approve", "--all", "--by", "ops"],
        )
    })
    .await
    .unwrap();
    assert!(approved.0, "{}", approved.2);
    tokio::task::block_in_place(|| {
        wait_for("the approved leaver reported", &|| {
            count("provisioning.applied") == 4
        })
    });
    for upn in people {
        assert!(!env.graph(upn).enabled, "{upn} disabled after approval");
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .expect("wait");
    assert!(killed.is_ok_and(|s| s.success()));
    assert!(status.success(), "graceful exit: {status:?}");
    receiver.task.abort();
    env.finish().await;
}
