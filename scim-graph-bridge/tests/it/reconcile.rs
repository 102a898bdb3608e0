//! End-to-end reconciliation against the fake Graph.

use std::collections::BTreeSet;
use std::time::Duration;

use scim_graph_bridge::directory::UserDirectory;
use scim_graph_bridge::fake_graph::Fault;
use scim_graph_bridge::graph::Outcome;
use scim_graph_bridge::plan::PlanKind;
use scim_graph_bridge::reconcile::{Reconciled, UserLink};
use serde_json::json;

use crate::support::{Env, HELPDESK_ROLE, TENANT, env, env_with, inspect, scim_user};

async fn run(e: &Env, id: &str, link: &UserLink) -> Reconciled {
    e.bridge()
        .reconcile_user(e.dir.as_ref(), TENANT, id, link)
        .await
        .unwrap()
}

fn set(items: &[&String]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn write_paths(e: &Env) -> Vec<String> {
    e.fake
        .writes()
        .iter()
        .map(|w| format!("{} {}", w.method, w.path))
        .collect()
}

#[tokio::test]
async fn joiner_existing_user_then_noop() {
    let e = env().await;
    let uid = e.graph_user("ada@x.com");
    e.fake.with_directory(|d| d.add_member(&e.g_manual, &uid));
    e.dir.put(
        TENANT,
        "s1",
        scim_user("ada@x.com", "Engineering", "Developer", true),
    );
    let r = run(&e, "s1", &UserLink::default()).await;
    assert_eq!(r.plan.kind, PlanKind::Update);
    assert!(r.report.as_ref().unwrap().is_complete(), "{:?}", r.report);
    assert_eq!(r.link.graph_id.as_deref(), Some(uid.as_str()));
    e.fake.with_directory(|d| {
        assert_eq!(d.groups_of(&uid), set(&[&e.g_all, &e.g_eng, &e.g_manual]));
        assert_eq!(d.licenses_of(&uid), set(&[&e.sku_e5]));
        let u = d.user(&uid).unwrap();
        assert_eq!(u["department"], "Engineering");
        assert_eq!(u["jobTitle"], "Developer");
        assert_eq!(u["employeeId"], "E-1");
    });
    // re-running converges with no writes at all
    e.fake.clear_log();
    let r = run(&e, "s1", &r.link).await;
    assert!(r.plan.is_noop(), "{:?}", r.plan.steps);
    assert!(e.fake.writes().is_empty());
}

#[tokio::test]
async fn joiner_creates_user() {
    let e = env().await;
    e.dir.put(
        TENANT,
        "s1",
        scim_user("new@x.com", "Engineering", "Developer", true),
    );
    let r = run(&e, "s1", &UserLink::default()).await;
    assert_eq!(r.plan.kind, PlanKind::Create);
    assert!(r.report.as_ref().unwrap().is_complete(), "{:?}", r.report);
    let uid = r.link.graph_id.clone().unwrap();
    let create = e
        .fake
        .writes()
        .into_iter()
        .find(|w| w.path == "/users")
        .unwrap();
    let body = create.body.unwrap();
    assert_eq!(body["usageLocation"], "US");
    assert_eq!(
        body["passwordProfile"]["forceChangePasswordNextSignIn"],
        true
    );
    assert_eq!(body["mailNickname"], "new");
    e.fake.with_directory(|d| {
        assert_eq!(d.user_by_upn("new@x.com").as_deref(), Some(uid.as_str()));
        assert_eq!(d.groups_of(&uid), set(&[&e.g_all, &e.g_eng]));
        assert_eq!(d.licenses_of(&uid), set(&[&e.sku_e5]));
    });
}

#[tokio::test]
async fn joiner_survives_replication_delay_after_create() {
    let e = env().await;
    e.fake.with_directory(|d| d.replication_delay = 3);
    e.dir.put(
        TENANT,
        "s1",
        scim_user("lag@x.com", "Engineering", "Developer", true),
    );
    let r = run(&e, "s1", &UserLink::default()).await;
    assert!(r.report.as_ref().unwrap().is_complete(), "{:?}", r.report);
    assert!(e.client.stats().replication_retries >= 1);
    let uid = r.link.graph_id.unwrap();
    e.fake
        .with_directory(|d| assert_eq!(d.groups_of(&uid).len(), 2));
}

#[tokio::test]
async fn unmatched_without_creation_writes_nothing() {
    let e = env_with(false, "").await;
    e.dir.put(
        TENANT,
        "s1",
        scim_user("ghost@x.com", "Engineering", "Developer", true),
    );
    let r = run(&e, "s1", &UserLink::default()).await;
    assert_eq!(r.plan.kind, PlanKind::Unmatched);
    assert!(e.fake.writes().is_empty());
}

#[tokio::test]
async fn mover_applies_only_the_difference_in_order() {
    let e = env().await;
    let uid = e.graph_user("m@x.com");
    e.dir.put(
        TENANT,
        "s1",
        scim_user("m@x.com", "Engineering", "Developer", true),
    );
    let link = run(&e, "s1", &UserLink::default()).await.link;
    e.fake.clear_log();
    e.dir.put(
        TENANT,
        "s1",
        scim_user("m@x.com", "IT", "Support Engineer", true),
    );
    let r = run(&e, "s1", &link).await;
    assert!(r.report.as_ref().unwrap().is_complete(), "{:?}", r.report);
    assert_eq!(
        write_paths(&e),
        vec![
            format!("PATCH /users/{uid}"),
            format!("POST /groups/{}/members/$ref", e.g_sup),
            format!("POST /users/{uid}/assignLicense"),
            format!("DELETE /groups/{}/members/{uid}/$ref", e.g_eng),
            "POST /roleManagement/directory/roleAssignments".to_owned(),
        ]
    );
    let lic = e
        .fake
        .writes()
        .into_iter()
        .find(|w| w.path.ends_with("/assignLicense"))
        .unwrap()
        .body
        .unwrap();
    assert_eq!(lic["addLicenses"][0]["skuId"], e.sku_e3.as_str());
    assert_eq!(lic["removeLicenses"][0], e.sku_e5.as_str());
    e.fake.with_directory(|d| {
        assert_eq!(d.groups_of(&uid), set(&[&e.g_all, &e.g_sup]));
        assert_eq!(
            d.roles_of(&uid),
            [(HELPDESK_ROLE.to_owned(), "/".to_owned())]
                .into_iter()
                .collect()
        );
    });
    // and back: the role goes first, before any grant
    e.fake.clear_log();
    e.dir.put(
        TENANT,
        "s1",
        scim_user("m@x.com", "Engineering", "Developer", true),
    );
    run(&e, "s1", &r.link).await;
    let w = write_paths(&e);
    assert!(w[0].starts_with("PATCH"), "{w:?}");
    assert!(
        w[1].starts_with("DELETE /roleManagement/directory/roleAssignments/"),
        "{w:?}"
    );
    e.fake
        .with_directory(|d| assert!(d.roles_of(&uid).is_empty()));
}

#[tokio::test]
async fn leaver_then_rehire() {
    let e = env().await;
    let uid = e.graph_user("l@x.com");
    e.fake.with_directory(|d| d.add_member(&e.g_manual, &uid));
    let manual_role = e
        .fake
        .with_directory(|d| d.assign_role(&uid, "62e90394-69f5-4237-9190-012177145e10", "/"));
    e.dir.put(
        TENANT,
        "s1",
        scim_user("l@x.com", "IT", "Support Engineer", true),
    );
    let link = run(&e, "s1", &UserLink::default()).await.link;
    e.fake.clear_log();
    e.dir.put(
        TENANT,
        "s1",
        scim_user("l@x.com", "IT", "Support Engineer", false),
    );
    let r = run(&e, "s1", &link).await;
    assert_eq!(r.plan.kind, PlanKind::Leaver);
    assert!(r.report.as_ref().unwrap().is_complete(), "{:?}", r.report);
    let w = write_paths(&e);
    assert_eq!(w[0], format!("PATCH /users/{uid}"));
    assert_eq!(w[1], format!("POST /users/{uid}/revokeSignInSessions"));
    assert!(w[2].starts_with("DELETE /roleManagement"), "{w:?}");
    assert!(w.last().unwrap().ends_with("/assignLicense"), "{w:?}");
    e.fake.with_directory(|d| {
        let u = d.user(&uid).unwrap();
        assert_eq!(u["accountEnabled"], false);
        assert!(u.get("signInSessionsValidFromDateTime").is_some());
        // only catalog objects were removed: the manual group and role survive
        assert_eq!(d.groups_of(&uid), set(&[&e.g_manual]));
        assert!(d.licenses_of(&uid).is_empty());
        assert_eq!(d.roles_of(&uid).len(), 1);
    });
    let _ = manual_role;
    // re-hire restores what the rules grant
    e.dir.put(
        TENANT,
        "s1",
        scim_user("l@x.com", "IT", "Support Engineer", true),
    );
    let r = run(&e, "s1", &r.link).await;
    assert_eq!(r.plan.kind, PlanKind::Rehire);
    assert!(r.report.as_ref().unwrap().is_complete(), "{:?}", r.report);
    e.fake.with_directory(|d| {
        assert_eq!(d.user(&uid).unwrap()["accountEnabled"], true);
        assert_eq!(d.groups_of(&uid), set(&[&e.g_all, &e.g_sup, &e.g_manual]));
        assert_eq!(d.licenses_of(&uid), set(&[&e.sku_e3]));
        assert_eq!(d.roles_of(&uid).len(), 2);
    });
}

#[tokio::test]
async fn deleted_user_is_disabled_then_hard_deleted_after_retention() {
    let e = env_with(true, "[leaver]\ndelete_after_days = 30\n").await;
    let uid = e.graph_user("d@x.com");
    e.dir.put(
        TENANT,
        "s1",
        scim_user("d@x.com", "Engineering", "Dev", true),
    );
    let link = run(&e, "s1", &UserLink::default()).await.link;
    e.dir.remove(TENANT, "s1");
    assert!(e.dir.get_user(TENANT, "s1").await.unwrap().is_none());
    let r = run(&e, "s1", &link).await;
    assert_eq!(r.plan.kind, PlanKind::Leaver);
    assert!(!r.plan.steps.iter().any(|s| s.label() == "delete_user"));
    assert!(r.link.left_at.is_some());
    e.fake.with_directory(|d| {
        assert_eq!(d.user(&uid).unwrap()["accountEnabled"], false);
        assert!(d.groups_of(&uid).is_empty());
    });
    e.clock.advance(Duration::from_secs(31 * 86_400));
    let r = run(&e, "s1", &r.link).await;
    assert_eq!(
        r.plan.steps.iter().map(|s| s.label()).collect::<Vec<_>>(),
        ["delete_user"]
    );
    assert!(r.link.graph_id.is_none());
    e.fake.with_directory(|d| assert!(d.is_deleted(&uid)));
}

#[tokio::test]
async fn manager_is_set_by_reference() {
    let e = env().await;
    let boss = e.graph_user("boss@x.com");
    let uid = e.graph_user("emp@x.com");
    e.dir.put(
        TENANT,
        "boss",
        scim_user("boss@x.com", "Sales", "Boss", true),
    );
    let mut u = scim_user("emp@x.com", "Sales", "Rep", true);
    u[crate::support::ENTERPRISE]["manager"] = json!({"value": "boss"});
    e.dir.put(TENANT, "emp", u);
    let r = run(&e, "emp", &UserLink::default()).await;
    assert!(r.report.unwrap().is_complete());
    e.fake
        .with_directory(|d| assert_eq!(d.manager_of(&uid).as_deref(), Some(boss.as_str())));
}

#[tokio::test]
async fn plan_mode_makes_no_graph_calls() {
    let e = env().await;
    e.dir.put(
        TENANT,
        "s1",
        scim_user("p@x.com", "IT", "Support Engineer", true),
    );
    let r = e
        .plan_bridge()
        .reconcile_user(e.dir.as_ref(), TENANT, "s1", &UserLink::default())
        .await
        .unwrap();
    assert!(r.report.is_none());
    assert!(!r.plan.actual_known);
    let labels: Vec<&str> = r.plan.steps.iter().map(|s| s.label()).collect();
    assert!(
        labels.contains(&"add_group") && labels.contains(&"add_role"),
        "{labels:?}"
    );
    let json = serde_json::to_value(&r.plan).unwrap();
    assert_eq!(json["kind"], "update");
    assert_eq!(
        e.fake.requests().len(),
        0,
        "plan mode must not call Graph (tokens included)"
    );
    let log = inspect(&e.fake, "requests").await;
    assert_eq!(log, json!([]));
}

#[tokio::test]
async fn permanent_failures_are_recorded_not_retried() {
    let e = env().await;
    let uid = e.fake.with_directory(|d| {
        d.add_user(json!({"userPrincipalName": "nol@x.com", "displayName": "n"}))
    });
    e.dir.put(
        TENANT,
        "s1",
        scim_user("nol@x.com", "Engineering", "Developer", true),
    );
    // every license assignment fails with a business-rule 400 (e.g. no seats left)
    e.fake.inject(Fault {
        path_contains: "/assignLicense".into(),
        times: 100,
        status: 400,
        message: Some("Subscription with SKU x does not have any available licenses.".into()),
        ..Fault::default()
    });
    let r = run(&e, "s1", &UserLink::default()).await;
    let report = r.report.unwrap();
    assert_eq!(report.permanent_failures, 1, "{report:?}");
    assert!(report.transient_failure.is_none());
    let lic = report
        .steps
        .iter()
        .find(|s| s.step == "assign_licenses")
        .unwrap();
    assert!(matches!(
        lic.outcome,
        Outcome::Failed {
            permanent: true,
            ..
        }
    ));
    assert_eq!(
        e.fake
            .writes()
            .iter()
            .filter(|w| w.path.ends_with("/assignLicense"))
            .count(),
        1
    );
    // the other steps still happened
    e.fake
        .with_directory(|d| assert_eq!(d.groups_of(&uid).len(), 2));
}

#[tokio::test]
async fn storm_of_429s_converges_within_the_write_rate() {
    let mut e = env().await;
    e.client = std::sync::Arc::new(crate::support::client(&e.fake, e.clock.clone(), 4.0, 4));
    let mut uids = Vec::new();
    for i in 0..8 {
        let upn = format!("s{i}@x.com");
        uids.push(e.graph_user(&upn));
        let (dept, title) = if i % 2 == 0 {
            ("Engineering", "Dev")
        } else {
            ("IT", "Support Agent")
        };
        e.dir
            .put(TENANT, &format!("u{i}"), scim_user(&upn, dept, title, true));
    }
    e.fake.inject(Fault {
        method: Some("POST".into()),
        times: 25,
        status: 429,
        retry_after: Some("0.7".into()),
        ..Fault::default()
    });
    e.fake.inject(Fault {
        method: Some("PATCH".into()),
        times: 4,
        status: 429,
        apply_then_fail: true,
        ..Fault::default()
    });
    e.fake.inject(Fault {
        method: Some("POST".into()),
        path_contains: "/members/$ref".into(),
        skip: 30,
        times: 5,
        status: 503,
        retry_after: Some("1.5".into()),
        apply_then_fail: true,
        ..Fault::default()
    });
    let mut links = vec![UserLink::default(); 8];
    for _round in 0..10 {
        let mut done = true;
        for (i, link) in links.iter_mut().enumerate() {
            // a read may still fail transiently during the storm; the next round retries
            match e
                .bridge()
                .reconcile_user(e.dir.as_ref(), TENANT, &format!("u{i}"), link)
                .await
            {
                Ok(r) => {
                    *link = r.link;
                    done &= r.plan.is_noop();
                }
                Err(err) => {
                    assert!(
                        matches!(&err, scim_graph_bridge::Error::Graph(g) if g.is_transient()),
                        "{err}"
                    );
                    done = false;
                }
            }
        }
        if done {
            break;
        }
    }
    for (i, uid) in uids.iter().enumerate() {
        e.fake.with_directory(|d| {
            let want = if i % 2 == 0 {
                set(&[&e.g_all, &e.g_eng])
            } else {
                set(&[&e.g_all, &e.g_sup])
            };
            assert_eq!(d.groups_of(uid), want, "user {i}");
            assert_eq!(d.licenses_of(uid).len(), 1, "user {i}");
        });
    }
    let limiter = e.client.limiter();
    // every write that reached Graph passed the limiter, and no window exceeded rate + burst
    assert_eq!(limiter.grant_log().len(), e.fake.writes().len());
    assert!(limiter.max_in_window(Duration::from_secs(1)) <= 4 + 4);
    assert!(limiter.max_in_window(Duration::from_secs(10)) <= 4 + 40);
    assert!(e.client.stats().throttled_retries >= 25);
}

#[tokio::test]
async fn bridge_from_config_section() {
    use scim_graph_bridge::clock::ManualClock;
    use scim_graph_bridge::config::{GraphConfig, Mode};
    use scim_graph_bridge::reconcile::Bridge;
    let e = env().await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[catalog.groups]\nall = \"x\"\n[defaults]\ngroups = [\"all\"]\n",
    )
    .unwrap();
    let clock = std::sync::Arc::new(ManualClock::fixed());
    let text = format!("rules = {:?}\n", rules.display().to_string());
    let mut cfg: GraphConfig = toml::from_str(&text).unwrap();
    let b = Bridge::from_config(&cfg, clock.clone()).unwrap();
    assert_eq!(b.mode(), Mode::Plan);
    cfg.apply_env([
        ("SCIM_GRAPH_TENANT_ID", "fake-tenant".to_owned()),
        ("SCIM_GRAPH_CLIENT_ID", "fake-client".to_owned()),
        ("SCIM_GRAPH_CLIENT_SECRET", "fake-secret".to_owned()),
        ("SCIM_GRAPH_AUTHORITY_URL", e.fake.authority_url()),
        ("SCIM_GRAPH_GRAPH_URL", e.fake.graph_url()),
    ])
    .unwrap();
    let b = Bridge::from_config(&cfg, clock).unwrap();
    assert_eq!(b.mode(), Mode::Apply);
    let r = b
        .client()
        .unwrap()
        .send(&scim_graph_bridge::graph::GraphRequest::get(
            "/subscribedSkus",
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    std::fs::write(&rules, "[[rule]]\nname = \"x\"\ngroups = [\"nope\"]\n").unwrap();
    let err = Bridge::from_config(&cfg, std::sync::Arc::new(ManualClock::fixed()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("rule \"x\": unknown group \"nope\""), "{err}");
}

#[tokio::test]
async fn match_by_employee_id() {
    let e = env_with(true, "").await;
    let rules = std::sync::Arc::new(
        scim_graph_bridge::rules::Rules::from_toml(&format!(
            "[match]\nscim = \"employeeNumber\"\ngraph = \"employeeId\"\n[catalog.groups]\nall = \"{}\"\n[defaults]\ngroups = [\"all\"]\n",
            e.g_all
        ))
        .unwrap(),
    );
    let uid = e.fake.with_directory(|d| {
        d.add_user(
            json!({"userPrincipalName": "other@x.com", "employeeId": "E-1", "displayName": "x"}),
        )
    });
    e.dir.put(
        TENANT,
        "s1",
        scim_user("not-the-upn@x.com", "Sales", "Rep", true),
    );
    let b =
        scim_graph_bridge::reconcile::Bridge::new(rules, Some(e.client.clone()), e.clock.clone());
    let r = b
        .reconcile_user(e.dir.as_ref(), TENANT, "s1", &UserLink::default())
        .await
        .unwrap();
    assert_eq!(r.link.graph_id.as_deref(), Some(uid.as_str()));
    e.fake
        .with_directory(|d| assert!(d.groups_of(&uid).contains(&e.g_all)));
}

#[tokio::test]
async fn create_that_took_effect_but_answered_429_is_adopted() {
    let e = env().await;
    e.fake.inject(Fault {
        method: Some("POST".into()),
        path_contains: "/users".into(),
        times: 1,
        status: 429,
        retry_after: Some("0.1".into()),
        apply_then_fail: true,
        ..Fault::default()
    });
    e.dir.put(
        TENANT,
        "s1",
        scim_user("twice@x.com", "Engineering", "Developer", true),
    );
    let r = run(&e, "s1", &UserLink::default()).await;
    let report = r.report.unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert!(
        matches!(report.steps[0].outcome, Outcome::AlreadyDone { .. }),
        "{:?}",
        report.steps[0]
    );
    let creates = e
        .fake
        .writes()
        .iter()
        .filter(|w| w.path == "/users")
        .count();
    assert_eq!(creates, 2);
    let uid = r.link.graph_id.unwrap();
    e.fake.with_directory(|d| {
        assert_eq!(d.user_by_upn("twice@x.com").as_deref(), Some(uid.as_str()));
        assert_eq!(d.groups_of(&uid).len(), 2);
    });
}
