//! Who holds a grant (`holders`), read from the fake Graph over HTTP: catalog groups, roles and
//! licenses, a group outside the catalog, each with `signInActivity` (set through the fake's
//! inspection endpoint); and the planner honouring overrides (a review's suppression, a
//! time-bound add).

use std::sync::Arc;

use scim_graph_bridge::holders::{GrantTarget, holders};
use scim_graph_bridge::overrides::{Grant, GrantKind, MemoryOverrides, Override, OverrideAction};
use scim_graph_bridge::plan::Step;
use scim_graph_bridge::reconcile::UserLink;
use serde_json::json;

use crate::support::*;

fn catalog(kind: GrantKind, name: &str) -> GrantTarget {
    GrantTarget::Catalog {
        grant: Grant::new(kind, name),
    }
}

#[tokio::test]
async fn holders_of_each_kind_with_their_last_sign_in() {
    let env = env().await;
    let ada = env.graph_user("ada@contoso.example");
    let bob = env.graph_user("bob@contoso.example");
    let assignment = env.fake.with_directory(|d| {
        d.add_member(&env.g_eng, &ada);
        d.add_member(&env.g_eng, &bob);
        d.add_member(&env.g_manual, &bob);
        d.add_owner(&env.g_eng, &ada);
        d.assign_license(&bob, &env.sku_e5);
        // a role held by a non-user principal is not a reviewable holder
        d.assign_role("00000000-0000-0000-0000-00000000cafe", HELPDESK_ROLE, "/");
        d.assign_role(&ada, HELPDESK_ROLE, "/")
    });
    // signInActivity through the fake's HTTP inspection endpoint
    let res = reqwest::Client::new()
        .post(format!("{}/_fake/signInActivity", env.fake.authority_url()))
        .json(&json!({"user": "ada@contoso.example", "lastSignInDateTime": "2025-10-01T08:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let upns = |hs: &[scim_graph_bridge::holders::Holder]| -> Vec<String> {
        let mut v: Vec<String> = hs
            .iter()
            .map(|h| h.user_principal_name.clone().unwrap_or_default())
            .collect();
        v.sort();
        v
    };
    let group = holders(&env.client, &env.rules, &catalog(GrantKind::Group, "eng"))
        .await
        .unwrap();
    assert_eq!(upns(&group), ["ada@contoso.example", "bob@contoso.example"]);
    let ada_holder = group.iter().find(|h| h.graph_user_id == ada).unwrap();
    assert_eq!(
        ada_holder.last_sign_in,
        Some(time::macros::datetime!(2025-10-01 08:00 UTC))
    );
    assert_eq!(
        ada_holder.match_value.as_deref(),
        Some("ada@contoso.example")
    );
    assert!(
        group
            .iter()
            .find(|h| h.graph_user_id == bob)
            .unwrap()
            .last_sign_in
            .is_none()
    );
    let role = holders(
        &env.client,
        &env.rules,
        &catalog(GrantKind::Role, "helpdesk"),
    )
    .await
    .unwrap();
    assert_eq!(upns(&role), ["ada@contoso.example"]);
    assert_eq!(role[0].assignment_id.as_deref(), Some(assignment.as_str()));
    let license = holders(&env.client, &env.rules, &catalog(GrantKind::License, "e5"))
        .await
        .unwrap();
    assert_eq!(upns(&license), ["bob@contoso.example"]);
    let manual = holders(
        &env.client,
        &env.rules,
        &GrantTarget::GraphGroup {
            group_id: env.g_manual.clone(),
        },
    )
    .await
    .unwrap();
    assert_eq!(upns(&manual), ["bob@contoso.example"]);
    let err = holders(
        &env.client,
        &env.rules,
        &catalog(GrantKind::Group, "finance"),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("finance"), "{err}");
    let owners: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/_fake/state", env.fake.authority_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let eng = owners["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == env.g_eng.as_str())
        .unwrap()
        .clone();
    assert_eq!(eng["owners"], json!([ada]));
}

#[tokio::test]
async fn the_planner_honours_suppressions_and_time_bound_adds() {
    let env = env().await;
    env.graph_user("ada@contoso.example");
    env.dir.put(
        TENANT,
        "u1",
        scim_user("ada@contoso.example", "Engineering", "Developer", true),
    );
    let overrides = Arc::new(MemoryOverrides::new());
    overrides.push(
        TENANT,
        "u1",
        Override {
            grant: Grant::new(GrantKind::Group, "eng"),
            action: OverrideAction::Suppress {
                reason: "review r-1".into(),
            },
        },
    );
    overrides.push(
        TENANT,
        "u1",
        Override {
            grant: Grant::new(GrantKind::Role, "helpdesk"),
            action: OverrideAction::Add {
                until: {
                    use scim_graph_bridge::clock::Clock;
                    env.clock.now() + time::Duration::hours(4)
                },
                reason: "time-bound grant j-1".into(),
            },
        },
    );
    let bridge = env.bridge().with_overrides(overrides.clone());
    let plan = bridge
        .plan_user(env.dir.as_ref(), TENANT, "u1", &UserLink::default())
        .await
        .unwrap();
    let groups: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::AddGroup { group, .. } => Some(group.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(groups, ["all-staff"], "{plan:?}");
    assert!(
        plan.steps
            .iter()
            .any(|s| matches!(s, Step::AddRole { role, .. } if role == "helpdesk"))
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n == "group \"eng\" suppressed by review r-1"),
        "{:?}",
        plan.notes
    );
    // without the overrides the rules alone decide
    overrides.clear(TENANT, "u1");
    let plan = bridge
        .plan_user(env.dir.as_ref(), TENANT, "u1", &UserLink::default())
        .await
        .unwrap();
    assert!(
        plan.steps
            .iter()
            .any(|s| matches!(s, Step::AddGroup { group, .. } if group == "eng"))
    );
    assert!(!plan.steps.iter().any(|s| matches!(s, Step::AddRole { .. })));
}
