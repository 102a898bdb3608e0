//! Time-bound grants: requested, approved by the manager, granted by the bridge, removed at
//! expiry (time through the clock) after a restart; policy checks; an `only_jit` role the
//! rules name is withheld until granted; an auto-approved grant and its extension.

use super::*;

/// The done-when path: a 4-hour grant of the Helpdesk Administrator role.
async fn granted_then_removed_at_expiry_across_a_restart(env: Env) {
    let (mgr, ada) = ("mgr@contoso.example", "ada@contoso.example");
    env.graph_user(mgr);
    env.graph_user(ada);
    let mgr_id = env.create_user(mgr, "IT", "Lead", None).await;
    let ada_id = env
        .create_user(ada, "IT", "Support Agent", Some(&mgr_id))
        .await;
    env.drain().await;
    // the rules name helpdesk for support staff, but the policy says: only through JIT
    assert_eq!(env.roles(ada), BTreeSet::new());
    assert!(env.groups(ada).contains("support"));
    env.clock.advance(time::Duration::minutes(5));

    let post = reqwest::Method::POST;
    let request = json!({"user": ada_id, "grant": "role:helpdesk", "duration": "PT4H",
                         "justification": "incident INC-1042: reset MFA for the sales team"});
    // policy checks first, each a 400 naming the field
    for (change, expect) in [
        (json!({"duration": "PT9H"}), "longer than the policy allows"),
        (json!({"justification": " "}), "justification: required"),
        (
            json!({"grant": "role:global-admin"}),
            "cannot be requested for a time",
        ),
        (json!({"duration": "4 hours"}), "ISO 8601"),
    ] {
        let mut body = request.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, err) = env
            .call(post.clone(), "/governance/v1/grants", Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert!(err["detail"].as_str().unwrap().contains(expect), "{err}");
    }
    let (status, grant) = env
        .call(post.clone(), "/governance/v1/grants", Some(request.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    assert_eq!(grant["status"], "pending");
    let id = grant["id"].as_str().unwrap().to_string();
    approvers_are_told(&env, &id, mgr, ada);
    // a second request for the same grant is a conflict
    let (status, _) = env
        .call(post.clone(), "/governance/v1/grants", Some(request))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    env.drain().await;
    assert_eq!(env.roles(ada), BTreeSet::new(), "nothing before approval");

    // ten minutes later: the user cannot approve their own grant; the manager can
    env.clock.advance(time::Duration::minutes(10));
    let approve = format!("/governance/v1/grants/{id}/approve");
    let (status, err) = env
        .call(post.clone(), &approve, Some(json!({"approver": ada})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    let approved_at = env.clock.now();
    let (status, grant) = env
        .call(
            post.clone(),
            &approve,
            Some(json!({"approver": mgr, "note": "ok for the incident"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    assert_eq!(grant["status"], "active");
    assert_eq!(grant["decidedBy"], mgr_id);
    let expires = approved_at + time::Duration::hours(4);
    assert_eq!(
        grant["expiresAt"],
        scim_server::governance::evidence::rfc3339(expires)
    );
    env.drain().await;
    assert_eq!(env.roles(ada), BTreeSet::from(["helpdesk".to_string()]));
    // the bridge's plan says why
    let plans = env
        .gov
        .bridge
        .as_ref()
        .unwrap()
        .store
        .plans_for_user(TENANT, &ada_id, 1)
        .await
        .unwrap();
    assert!(plans[0].plan.desired.roles.contains("helpdesk"));
    assert!(
        !plans[0].plan.notes.iter().any(|n| n.contains("suppressed")),
        "{:?}",
        plans[0].plan.notes
    );

    // three hours later, a restart: still held
    let env = env.restart(time::Duration::hours(3)).await;
    env.run_schedule().await;
    assert_eq!(env.roles(ada), BTreeSet::from(["helpdesk".to_string()]));
    // past the expiry, after another restart: the schedule ends it and the bridge removes it
    let env = env.restart(time::Duration::minutes(61)).await;
    env.fake.clear_log();
    env.run_schedule().await;
    assert_eq!(env.roles(ada), BTreeSet::new(), "removed at expiry");
    let deletes: Vec<_> = env
        .fake
        .writes()
        .into_iter()
        .map(|w| {
            (
                w.method,
                w.path.split('/').take(3).collect::<Vec<_>>().join("/"),
            )
        })
        .collect();
    assert_eq!(
        deletes,
        [(
            "DELETE".to_string(),
            "/roleManagement/directory".to_string()
        )],
        "exactly the role removal"
    );
    let (_, grant) = env
        .call(
            reqwest::Method::GET,
            &format!("/governance/v1/grants/{id}"),
            None,
        )
        .await;
    assert_eq!(grant["status"], "expired");
    assert_eq!(
        env.event_kinds(&id).await,
        [
            "jit.requested",
            "jit.notified",
            "jit.approved",
            "jit.expired"
        ]
    );
    assert!(env.groups(ada).contains("support"), "the rest stays");
    assert_eq!(env.audit_problems().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jit_grant_is_added_then_removed_at_expiry_across_a_restart() {
    on_both(granted_then_removed_at_expiry_across_a_restart).await;
}

/// An auto-approved group grant, its extension (continuing from its end) and a revocation.
async fn auto_approval_extension_and_revocation(env: Env) {
    let bob = "bob@contoso.example";
    env.graph_user(bob);
    let bob_id = env.create_user(bob, "Sales", "Rep", None).await;
    env.drain().await;
    assert!(!env.groups(bob).contains("eng"));
    let post = reqwest::Method::POST;
    let (status, g) = env
        .call(
            post.clone(),
            "/governance/v1/grants",
            Some(
                json!({"user": bob, "grant": "group:eng", "duration": "PT2H",
                        "justification": "pairing on the release"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{g}");
    assert_eq!(g["status"], "active");
    assert_eq!(g["decidedBy"], "policy");
    let first = g["id"].as_str().unwrap().to_string();
    env.drain().await;
    assert!(env.groups(bob).contains("eng"));

    env.clock.advance(time::Duration::minutes(1));
    let (status, ext) = env
        .call(
            post.clone(),
            &format!("/governance/v1/grants/{first}/extend"),
            Some(json!({"duration": "PT1H", "justification": "release slipped"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ext}");
    assert_eq!(ext["startsAt"], g["expiresAt"], "continues from the end");
    let second = ext["id"].as_str().unwrap().to_string();

    // past the first grant's end, within the extension: still a member
    env.clock.advance(time::Duration::minutes(149));
    env.run_schedule().await;
    assert!(env.groups(bob).contains("eng"));
    // a revocation ends the extension now
    let (status, r) = env
        .call(
            post.clone(),
            &format!("/governance/v1/grants/{second}/revoke"),
            Some(json!({"note": "done early"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "revoked");
    env.drain().await;
    assert!(!env.groups(bob).contains("eng"));
    let (_, list) = env
        .call(
            reqwest::Method::GET,
            &format!("/governance/v1/grants?user={bob_id}"),
            None,
        )
        .await;
    let statuses: Vec<&str> = list["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["revoked", "expired"]);
    let (status, _) = env
        .call(
            reqwest::Method::GET,
            "/governance/v1/grants?status=bogus",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jit_auto_approval_extension_and_revocation() {
    on_both(auto_approval_extension_and_revocation).await;
}

/// A pending request is told to who may approve it: the manager (the policy's other approver,
/// `secops@contoso.example`, has no SCIM user here and is skipped), by a signed webhook and by
/// e-mail; nobody else is told.
fn approvers_are_told(env: &Env, id: &str, manager: &str, user: &str) {
    use scim_server::inbound::signature::{SigningKey, verify};
    let hooks = env.db.hook.received();
    assert_eq!(hooks.len(), 1, "one webhook per approver");
    let (headers, body) = &hooks[0];
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    verify(
        &[SigningKey::parse(super::WEBHOOK_SECRET).unwrap()],
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
        body,
        time::OffsetDateTime::from_unix_timestamp(h("webhook-timestamp").unwrap().parse().unwrap())
            .unwrap(),
    )
    .expect("a valid Standard Webhooks signature");
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["type"], "jit.approval_requested", "{payload}");
    assert_eq!(payload["data"]["recipient"], manager, "{payload}");
    assert_eq!(payload["data"]["grantId"], id, "{payload}");
    assert_eq!(payload["data"]["grant"], "role:helpdesk", "{payload}");
    assert_eq!(payload["data"]["user"], user, "{payload}");
    let mails = env.db.smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, vec![manager.to_string()]);
    assert!(
        mails[0]
            .data
            .contains("Subject: Time-bound access request: role:helpdesk for"),
        "{}",
        mails[0].data
    );
    assert!(mails[0].data.contains(id), "{}", mails[0].data);
}
