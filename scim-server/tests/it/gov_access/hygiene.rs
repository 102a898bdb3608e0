//! Hygiene reports find the planted cases and nothing else: a stale account, a Graph account
//! holding catalog grants with no SCIM user, a leaver still enabled in Graph, a user whose Graph
//! state drifted from the rules, and the holders of the catalog role with how they got it.

use super::*;

fn days_ago(env: &Env, days: i64) -> String {
    scim_server::governance::evidence::rfc3339(env.clock.now() - time::Duration::days(days))
}

async fn planted_cases(env: Env) {
    // /metrics first: the process's recorder is installed by the first scrape
    let (status, _) = env.call(reqwest::Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let users = [
        ("alice", "Engineering", "Developer"),
        ("bob", "Engineering", "Developer"),
        ("carol", "Sales", "Rep"),
        ("dave", "Engineering", "Developer"),
        ("erin", "Engineering", "Developer"),
        ("frank", "IT", "Support Agent"),
        ("secops", "IT", "Security"),
    ];
    let mut ids = std::collections::BTreeMap::new();
    for (name, dept, title) in users {
        let upn = format!("{name}@contoso.example");
        env.graph_user(&upn);
        ids.insert(name, env.create_user(&upn, dept, title, None).await);
    }
    // ghost: a Graph account with catalog grants and no SCIM user
    let ghost = env.fake.with_directory(|d| {
        let g = d.add_user(json!({"userPrincipalName": "ghost@contoso.example",
                                  "displayName": "Ghost", "mailNickname": "ghost"}));
        d.add_member(&env.cat.eng, &g);
        d.assign_role(&g, HELPDESK_ROLE, "/");
        g
    });
    env.drain().await;
    // frank holds helpdesk through a time-bound grant approved by the policy's approver
    let (status, g) = env
        .call(
            reqwest::Method::POST,
            "/governance/v1/grants",
            Some(
                json!({"user": ids["frank"], "grant": "role:helpdesk", "duration": "PT8H",
                        "justification": "on call this week"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{g}");
    let grant = g["id"].as_str().unwrap().to_string();
    let (status, g) = env
        .call(
            reqwest::Method::POST,
            &format!("/governance/v1/grants/{grant}/approve"),
            Some(json!({"approver": "secops@contoso.example"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    env.drain().await;
    // sign-ins: alice 120 days ago, carol unknown, everyone else yesterday
    for name in ["alice", "bob", "dave", "erin", "frank", "secops"] {
        let at = if name == "alice" {
            days_ago(&env, 120)
        } else {
            days_ago(&env, 1)
        };
        env.fake.with_directory(|d| {
            let id = d.user_by_upn(&format!("{name}@contoso.example")).unwrap();
            assert!(d.set_last_sign_in(&id, Some(&at)));
        });
    }
    // erin is taken out of `eng` by hand in Entra: drift once the bridge has had its chance
    env.fake.with_directory(|d| {
        let erin = d.user_by_upn("erin@contoso.example").unwrap();
        d.remove_member(&env.cat.eng, &erin);
    });
    // dave leaves in SCIM; the bridge has not run yet, so Graph still has him enabled
    env.patch_user(
        &ids["dave"],
        json!([{"op": "Replace", "path": "active", "value": false}]),
    )
    .await;
    env.clock.advance(time::Duration::hours(2));

    let (status, r) = env
        .call(reqwest::Method::GET, "/governance/v1/hygiene", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let names = |key: &str, field: &str| -> Vec<String> {
        r[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x[field].as_str().unwrap_or("-").to_string())
            .collect()
    };
    assert_eq!(names("stale", "userId"), [ids["alice"].clone()], "{r}");
    assert_eq!(r["stale"][0]["daysSinceSignIn"], 120);
    assert_eq!(r["signInUnknown"], 1, "carol");
    let orphaned: Vec<(String, String)> = r["orphaned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["graphUserId"].as_str().unwrap().to_string(),
                o["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let dave_graph = env
        .fake
        .with_directory(|d| d.user_by_upn("dave@contoso.example").unwrap());
    assert_eq!(
        orphaned,
        [
            (ghost.clone(), "no_scim_user".to_string()),
            (dave_graph, "terminated_but_enabled".to_string())
        ],
        "{r}"
    );
    assert_eq!(
        r["orphaned"][0]["grants"],
        json!(["group:eng", "role:helpdesk"])
    );
    assert_eq!(names("drift", "userId"), [ids["erin"].clone()], "{r}");
    assert_eq!(r["drift"][0]["steps"], json!(["add_group eng"]));
    let privileged: Vec<(String, String)> = r["privileged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["userPrincipalName"].as_str().unwrap().to_string(),
                p["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut expected = vec![
        ("frank@contoso.example".to_string(), "jit".to_string()),
        ("ghost@contoso.example".to_string(), "outside".to_string()),
    ];
    expected.sort_by_key(|(upn, _)| env.fake.with_directory(|d| d.user_by_upn(upn).unwrap()));
    assert_eq!(privileged, expected, "{r}");
    assert_eq!(
        r["privileged"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["source"] == "jit")
            .unwrap()["jitGrant"],
        grant
    );

    // CSV: a header and one row per finding
    let res = env
        .http
        .get(format!("{}/governance/v1/hygiene?format=csv", env.root))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = res.text().await.unwrap();
    assert_eq!(csv.lines().count(), 1 + 1 + 2 + 1 + 2, "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("drift,") && l.contains("add_group eng")),
        "{csv}"
    );
    // bad parameters are 400s
    for q in ["staleDays=0", "staleDays=x", "format=xml"] {
        let (status, e) = env
            .call(
                reqwest::Method::GET,
                &format!("/governance/v1/hygiene?{q}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {e}");
    }
    // the gauges
    let (_, metrics) = env.call(reqwest::Method::GET, "/metrics", None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    for line in [
        "scim_governance_stale_accounts{tenant=\"default\"} 1",
        "scim_governance_orphaned_accounts{tenant=\"default\"} 2",
        "scim_governance_drifted_users{tenant=\"default\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hygiene_reports_find_the_planted_cases_and_nothing_else() {
    on_both(planted_cases).await;
}
