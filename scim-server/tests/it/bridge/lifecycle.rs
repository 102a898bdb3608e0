//! Joiner, mover, leaver and re-hire paths, a rules change, plan mode, the directory and the
//! background worker, driven in-process.

use super::*;

/// Joiner onto an existing Graph user, mover, leaver by `active: "False"` (as Entra sends it),
/// and re-hire; the non-catalog group survives every step.
async fn joiner_mover_leaver_rehire(env: &Env) {
    let ada = "ada@contoso.example";
    let graph_id = env.graph_user(ada);

    // joiner: the existing Graph user is matched by UPN and granted the Engineering set
    let id = env.create_user(ada, "Engineering", "Developer").await;
    let s = env.drain().await;
    assert_eq!(
        (s.completed, s.retried, s.dead_lettered),
        (1, 0, 0),
        "{s:?}"
    );
    let v = env.graph(ada);
    assert_eq!(v.id, graph_id, "matched, not created");
    assert!(v.enabled);
    assert_eq!(v.department.as_deref(), Some("Engineering"));
    assert_grants(&v, &["all-staff", "eng", "manual"], &["e5"], &[]);
    assert_eq!(
        env.last_plan(&id).await,
        ("apply".into(), "applied".into(), "update".into())
    );

    // mover: Engineering → IT support swaps groups, licenses and roles
    env.patch_user(
        &id,
        json!([
            {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": "IT"},
            {"op": "Replace", "path": "title", "value": "Support Agent"}
        ]),
    )
    .await;
    env.drain().await;
    let v = env.graph(ada);
    assert_eq!(v.department.as_deref(), Some("IT"));
    assert_grants(
        &v,
        &["all-staff", "manual", "support"],
        &["e3"],
        &["helpdesk"],
    );

    // leaver: Entra's soft delete
    env.fake.clear_log();
    env.patch_user(
        &id,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    env.drain().await;
    let v = env.graph(ada);
    assert!(!v.enabled, "{v:?}");
    assert!(!v.deleted);
    assert_grants(&v, &["manual"], &[], &[]);
    let revoked =
        env.fake.requests().iter().any(|r| {
            r.method == "POST" && r.path == format!("/users/{graph_id}/revokeSignInSessions")
        });
    assert!(revoked, "sessions revoked: {:?}", env.fake.requests());
    assert_eq!(env.last_plan(&id).await.2, "leaver");

    // re-hire: active again restores the account and the grants
    env.patch_user(
        &id,
        json!([{"op": "Replace", "path": "active", "value": true}]),
    )
    .await;
    env.drain().await;
    let v = env.graph(ada);
    assert!(v.enabled);
    assert_grants(
        &v,
        &["all-staff", "manual", "support"],
        &["e3"],
        &["helpdesk"],
    );
    assert_eq!(env.last_plan(&id).await.2, "rehire");

    // nothing changed since: another round is a no-op without Graph writes
    env.fake.clear_log();
    assert_eq!(env.drain().await.claimed, 0);
    assert!(env.fake.writes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiner_mover_leaver_rehire_on_sqlite() {
    let env = Env::start("apply").await;
    joiner_mover_leaver_rehire(&env).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiner_on_postgres() {
    let Some(base) = postgres_base().await else {
        return;
    };
    let env = Env::start_on("apply", Some(base)).await;
    let ada = "ada@contoso.example";
    let graph_id = env.graph_user(ada);
    let id = env.create_user(ada, "Engineering", "Developer").await;
    let s = env.drain().await;
    assert_eq!((s.ingested, s.completed), (1, 1), "{s:?}");
    let v = env.graph(ada);
    assert_eq!(v.id, graph_id);
    assert_grants(&v, &["all-staff", "eng", "manual"], &["e5"], &[]);
    assert_eq!(
        env.last_plan(&id).await,
        ("apply".into(), "applied".into(), "update".into())
    );
    let (_, status) = env.cli(BridgeCommand::Status { json: true }).await;
    let status: Value = serde_json::from_str(&status).expect("status JSON");
    assert_eq!(
        status["cursors"][0]["last_seq"],
        status["cursors"][0]["head_seq"]
    );
    env.finish().await;
}

/// A joiner without a Graph user is created; DELETE is a leaver (disabled, not deleted: no
/// retention is configured); a new SCIM user with the same userName re-hires the same Graph user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_joiner_delete_and_rehire() {
    let env = Env::start("apply").await;
    let bob = "bob@contoso.example";
    let id = env.create_user(bob, "Engineering", "Developer").await;
    env.drain().await;
    let v = env.graph(bob);
    assert!(v.enabled);
    assert_grants(&v, &["all-staff", "eng"], &["e5"], &[]);
    assert_eq!(env.last_plan(&id).await.2, "create");
    let created = v.id;

    env.delete_user(&id).await;
    env.drain().await;
    let v = env.graph(bob);
    assert_eq!(v.id, created);
    assert!(!v.enabled && !v.deleted, "{v:?}");
    assert_grants(&v, &[], &[], &[]);

    let again = env.create_user(bob, "Engineering", "Developer").await;
    assert_ne!(again, id);
    env.drain().await;
    let v = env.graph(bob);
    assert_eq!(
        v.id, created,
        "the disabled Graph user is re-hired, not duplicated"
    );
    assert!(v.enabled);
    assert_grants(&v, &["all-staff", "eng"], &["e5"], &[]);
    assert_eq!(env.last_plan(&again).await.2, "rehire");
    env.finish().await;
}

/// A changed rules file takes effect for existing users only after `bridge reconcile --all`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_change_then_reconcile_all() {
    let env = Env::start("apply").await;
    let users = [
        "u1@contoso.example",
        "u2@contoso.example",
        "u3@contoso.example",
    ];
    for u in users {
        env.create_user(u, "Engineering", "Developer").await;
    }
    // a user the rules do not touch beyond the defaults
    env.create_user("u4@contoso.example", "Sales", "Rep").await;
    let s = env.drain().await;
    assert_eq!(s.completed, 4, "{s:?}");
    for u in users {
        assert_eq!(env.graph(u).licenses, set(&["e5"]));
    }

    // Engineering moves from E5 to E3; a restarted bridge reads the new rules
    std::fs::write(
        env.dir.path().join("graph-rules.toml"),
        rules_text(&env.cat, "e3"),
    )
    .unwrap();
    let ctx = BridgeContext::open(
        &env.graph,
        &env.config.database_url,
        env.store.clone(),
        Arc::new(scim_core::schema::SchemaRegistry::builtin()),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let worker = ctx.worker(test_worker_config());
    env.fake.clear_log();
    // no SCIM change: nothing to do yet
    assert_eq!(run_until_idle(&worker, 50).await.unwrap().claimed, 0);
    assert!(env.fake.writes().is_empty());

    let (code, out) = env
        .cli(BridgeCommand::Reconcile {
            all: true,
            user: None,
            tenant: None,
        })
        .await;
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(out.trim(), "tenant \"default\": 4 users queued");
    let s = run_until_idle(&worker, 50).await.unwrap();
    assert_eq!(s.completed, 4, "{s:?}");
    for u in users {
        let v = env.graph(u);
        assert_grants(&v, &["all-staff", "eng"], &["e3"], &[]);
    }
    let sales = env.graph("u4@contoso.example");
    assert_grants(&sales, &["all-staff"], &[], &[]);
    // one assignLicense per Engineering user, nothing for the Sales user
    let writes = env.fake.writes();
    assert_eq!(writes.len(), 3, "{writes:?}");
    assert!(writes.iter().all(|w| w.path.ends_with("/assignLicense")));
    env.finish().await;
}

/// Without credentials the bridge plans only: plans are recorded and nothing reaches Graph, not
/// even a token request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_mode_makes_no_graph_call() {
    let env = Env::start("plan").await;
    assert_eq!(
        env.graph.effective_mode(),
        scim_graph_bridge::config::Mode::Plan
    );
    env.graph_user("ada@contoso.example");
    env.fake.clear_log();
    let id = env
        .create_user("ada@contoso.example", "Engineering", "Developer")
        .await;
    env.patch_user(
        &id,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    let other = env
        .create_user("bob@contoso.example", "IT", "Support Agent")
        .await;
    env.delete_user(&other).await;
    let s = env.drain().await;
    assert_eq!((s.ingested, s.completed), (4, 2), "{s:?}");
    assert_eq!(
        env.last_plan(&id).await,
        ("plan".into(), "planned".into(), "leaver".into())
    );
    let (code, out) = env
        .cli(BridgeCommand::Plan {
            user: id.clone(),
            tenant: None,
        })
        .await;
    assert_eq!(code, ExitCode::SUCCESS);
    let plan: Value = serde_json::from_str(&out).expect("plan JSON");
    assert_eq!(plan["actual_known"], false);
    assert_eq!(plan["kind"], "leaver");
    let (_, status) = env.cli(BridgeCommand::Status { json: false }).await;
    assert!(status.starts_with("mode: plan\n"), "{status}");
    assert!(env.fake.requests().is_empty(), "{:?}", env.fake.requests());
    assert_eq!(env.fake.token_requests(), 0);
    let ada = env.graph("ada@contoso.example");
    assert!(ada.enabled);
    assert_grants(&ada, &["manual"], &[], &[]);
    env.finish().await;
}

/// The directory pages user ids in ascending order, strictly after the cursor, per tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_pages_user_ids() {
    use scim_graph_bridge::directory::UserDirectory;
    let env = Env::start("plan").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            env.create_user(&format!("p{i}@contoso.example"), "Sales", "Rep")
                .await,
        );
    }
    ids.sort();
    let dir = StoreDirectory::new(
        env.store.clone(),
        Arc::new(scim_core::schema::SchemaRegistry::builtin()),
    );
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let page = dir
            .list_user_ids(TENANT, after.as_deref(), 2)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().cloned();
        seen.extend(page);
    }
    assert_eq!(seen, ids);
    assert!(
        dir.list_user_ids("nobody", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let user = dir.get_user(TENANT, &ids[0]).await.unwrap().expect("user");
    assert_eq!(user["id"], ids[0].as_str());
    assert_eq!(user[ENTERPRISE]["department"], "Sales");
    assert!(dir.get_user(TENANT, "missing").await.unwrap().is_none());
    env.finish().await;
}

/// The background worker `serve` runs picks up changes by itself and stops on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_worker_applies_changes_and_stops() {
    let env = Env::start("apply").await;
    let background = BackgroundWorker::spawn(
        env.ctx.worker(WorkerConfig {
            owner: "background".into(),
            ..test_worker_config()
        }),
        Duration::from_secs(10),
    );
    assert!(background.is_running());
    env.create_user("bg@contoso.example", "Engineering", "Developer")
        .await;
    let mut applied = false;
    for _ in 0..400 {
        let done = env.fake.with_directory(|d| {
            d.user_by_upn("bg@contoso.example")
                .is_some_and(|u| d.licenses_of(&u).len() == 1)
        });
        if done {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(applied, "the background worker reconciled the joiner");
    background.shutdown().await;
    let v = env.graph("bg@contoso.example");
    assert_grants(&v, &["all-staff", "eng"], &["e5"], &[]);
    env.finish().await;
}

/// SCIM writes keep succeeding while the background worker works on the same SQLite file through
/// its own pool (both sides wait for the single writer instead of failing), and every user ends
/// up reconciled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_while_the_worker_runs() {
    let env = Arc::new(Env::start("apply").await);
    let background = BackgroundWorker::spawn(
        env.ctx.worker(WorkerConfig {
            owner: "busy".into(),
            ..test_worker_config()
        }),
        Duration::from_secs(10),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let env = env.clone();
        tasks.spawn(async move {
            let upn = format!("c{i}@contoso.example");
            let id = env.create_user(&upn, "Engineering", "Developer").await;
            env.patch_user(
                &id,
                json!([{"op": "Replace", "path": "title", "value": "Lead"}]),
            )
            .await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("SCIM writes succeed");
    }
    let mut converged = false;
    for _ in 0..600 {
        converged = env.fake.with_directory(|d| {
            (0..40).all(|i| {
                d.user_by_upn(&format!("c{i}@contoso.example"))
                    .is_some_and(|u| d.licenses_of(&u).len() == 1 && d.groups_of(&u).len() == 2)
            })
        });
        if converged {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    background.shutdown().await;
    assert!(converged, "every user reconciled");
    let status = scim_graph_bridge::worker::status(&env.ctx.store, env.ctx.change_log.as_ref())
        .await
        .unwrap();
    assert_eq!((status.dead_letters, status.cursors[0].last_seq), (0, 80));
    let env = Arc::try_unwrap(env).unwrap_or_else(|_| panic!("env still shared"));
    env.finish().await;
}
