//! Leaver evidence: a leaver who came through the HR intake gets one record listing the HR
//! event, the SCIM change, when the bridge started, every Graph step with its time, Graph's
//! request id and outcome, and the time to full revocation; the record is anchored in the
//! change log, exported as JSON, CSV and HTML, and its digest verifies.

use super::*;

fn bulk(upn: &str, active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{
            "method": "POST", "bulkId": "1", "path": "/Users",
            "data": {
                "schemas": [USER_URN, ENTERPRISE],
                "externalId": "E-4711", "userName": upn, "active": active,
                "displayName": "Ada Lovelace", "title": "Support Agent",
                ENTERPRISE: {"department": "IT"}
            }
        }]
    })
}

async fn leaver_record(env: Env) {
    let ada = "ada@contoso.example";
    let graph_id = env.graph_user(ada);
    let post = reqwest::Method::POST;
    let (status, body) = env
        .call(
            post.clone(),
            "/inbound/v1/bulkUpload",
            Some(bulk(ada, true)),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    env.run_intake().await;
    env.drain().await;
    assert!(env.groups(ada).contains("support"));

    // the HR system terminates her; the intake applies it a minute later, the bridge a minute
    // after that
    env.clock.advance(time::Duration::hours(1));
    let received = env.clock.now();
    let (status, body) = env
        .call(
            post.clone(),
            "/inbound/v1/bulkUpload",
            Some(bulk(ada, false)),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    env.clock.advance(time::Duration::minutes(1));
    env.run_intake().await;
    env.clock.advance(time::Duration::minutes(1));
    env.fake.clear_log();
    env.drain().await;
    assert!(env.groups(ada).is_empty());
    let graph_writes: Vec<(String, String, Option<String>)> = env
        .fake
        .writes()
        .into_iter()
        .map(|w| (w.method, w.path, w.request_id))
        .collect();

    let (status, export) = env
        .call(
            reqwest::Method::GET,
            "/governance/v1/evidence?from=2026-01-01&to=2026-01-02",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{export}");
    let records = export["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{export}");
    let r = &records[0];
    assert_eq!(r["userName"], ada);
    assert_eq!(r["graphUserId"], graph_id);
    let rfc = scim_server::governance::evidence::rfc3339;
    assert_eq!(r["hrEvent"]["source"], "bulkUpload", "{r}");
    assert_eq!(r["hrEvent"]["receivedAt"], rfc(received));
    assert_eq!(r["scimChange"]["operation"], "patch", "{r}");
    assert_eq!(
        r["scimChange"]["at"],
        rfc(received + time::Duration::minutes(1))
    );
    let bridge_at = rfc(received + time::Duration::minutes(2));
    assert_eq!(r["bridgeStartedAt"], bridge_at);
    // every Graph step: what, when, Graph's request id, outcome
    let steps: Vec<(String, String)> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["at"], bridge_at, "{s}");
            assert_eq!(s["outcome"], "done", "{s}");
            (
                s["step"].as_str().unwrap().to_string(),
                s["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("disable_account", ""),
            ("revoke_sessions", ""),
            ("remove_group", "all-staff"),
            ("remove_group", "support"),
            ("assign_licenses", "+ -e3"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
        "{r}"
    );
    let recorded: BTreeSet<String> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requestId"].as_str().unwrap().to_string())
        .collect();
    let answered: BTreeSet<String> = graph_writes
        .iter()
        .filter_map(|(_, _, id)| id.clone())
        .collect();
    assert_eq!(recorded, answered, "{graph_writes:?}");
    assert_eq!(r["fullyRevokedAt"], bridge_at);
    assert_eq!(r["secondsToRevocation"], 120);
    let seq = r["chainSeq"].as_i64().expect("anchored in the change log");
    assert!(seq > 0);
    assert_eq!(env.audit_problems().await, Vec::<String>::new());
    let (_, v) = env
        .call(reqwest::Method::GET, "/governance/v1/evidence/verify", None)
        .await;
    assert_eq!(v["problems"], json!([]), "{v}");

    // a second export finds the same record (built once)
    let (_, again) = env
        .call(
            reqwest::Method::GET,
            "/governance/v1/evidence?from=2026-01-01&to=2026-01-02",
            None,
        )
        .await;
    assert_eq!(again["records"], export["records"]);
    for (format, content_type, needle) in [
        ("csv", "text/csv; charset=utf-8", ",remove_group,support,"),
        (
            "html",
            "text/html; charset=utf-8",
            "<h2>ada@contoso.example</h2>",
        ),
    ] {
        let res = env
            .http
            .get(format!(
                "{}/governance/v1/evidence?from=2026-01-01&to=2026-01-02&format={format}",
                env.root
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["content-type"], content_type);
        let text = res.text().await.unwrap();
        assert!(text.contains(needle), "{text}");
    }
    for q in [
        "from=2026-01-02&to=2026-01-01",
        "to=2026-01-02",
        "from=yesterday&to=2026-01-02",
    ] {
        let (status, e) = env
            .call(
                reqwest::Method::GET,
                &format!("/governance/v1/evidence?{q}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {e}");
    }

    // tampering with the stored record is found
    let gov_store = env.gov.store.clone();
    match gov_store {
        scim_server::governance::GovStore::Sqlite(p) => {
            use scim_server::store::write_gate::SideWrites;
            // In a turn, as every write beside the store's (write_gate::commit_check).
            let _turn = p.write_turn().await;
            sqlx::query(
                "UPDATE gov_leaver_evidence SET record_json = replace(record_json, 'done', 'DONE')",
            )
            .execute(&p)
            .await
            .unwrap();
        }
        scim_server::governance::GovStore::Postgres(p) => {
            sqlx::query(
                "UPDATE gov_leaver_evidence SET record_json = replace(record_json, 'done', 'DONE')",
            )
            .execute(&p)
            .await
            .unwrap();
        }
    }
    let (_, v) = env
        .call(reqwest::Method::GET, "/governance/v1/evidence/verify", None)
        .await;
    assert_eq!(v["problems"].as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaver_evidence_lists_every_graph_step_with_times() {
    on_both(leaver_record).await;
}
