use serde_json::{Value, json};

use super::*;
use scim_core::schema::ENTERPRISE_USER_URN as ENTERPRISE;

const RULES: &str = r#"
[create]
enabled = true
usage_location = "US"
[catalog.groups]
all-staff = "g-all"
eng = "g-eng"
support = "g-sup"
[catalog.licenses]
e3 = { sku_id = "sku-e3" }
e5 = { sku_id = "sku-e5" }
[catalog.roles]
helpdesk = { role_definition_id = "rd-help" }
[defaults]
groups = ["all-staff"]
[leaver]
delete_after_days = 30
[[rule]]
name = "engineering"
when = { department = "Engineering" }
groups = ["eng"]
licenses = ["e5"]
[[rule]]
name = "support"
when = { department = "IT" }
groups = ["support"]
licenses = ["e3"]
roles = ["helpdesk"]
"#;

fn rules() -> Rules {
    Rules::from_toml(RULES).unwrap()
}

fn scim(dept: &str, active: bool) -> Value {
    json!({"userName": "ada@x.com", "displayName": "Ada", "active": active,
           ENTERPRISE: {"department": dept}})
}

fn labels(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| match s {
            Step::AddGroup { group, .. } => format!("add_group:{group}"),
            Step::RemoveGroup { group, .. } => format!("remove_group:{group}"),
            Step::AddRole { role, .. } => format!("add_role:{role}"),
            Step::RemoveRole { role, .. } => format!("remove_role:{role}"),
            Step::AssignLicenses { add, remove } => format!(
                "licenses:+{}-{}",
                add.iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                remove
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Step::UpdateUser { attributes } => {
                format!(
                    "update:{}",
                    attributes.keys().cloned().collect::<Vec<_>>().join(",")
                )
            }
            other => other.label().to_owned(),
        })
        .collect()
}

fn existing(
    dept: &str,
    enabled: bool,
    groups: &[&str],
    lic: &[&str],
    roles: &[&str],
) -> ActualState {
    let r = rules();
    let mut u = GraphUser {
        id: "u-1".into(),
        account_enabled: enabled,
        groups: groups.iter().map(|s| s.to_string()).collect(),
        licenses: lic.iter().map(|s| (s.to_string(), vec![])).collect(),
        roles: roles
            .iter()
            .map(|s| (s.to_string(), format!("ra-{s}")))
            .collect(),
        ..GraphUser::default()
    };
    // attributes as the rules would set them for `dept`
    u.attributes = r.evaluate(Some(&scim(dept, true))).attributes;
    ActualState {
        known: true,
        user: Some(u),
    }
}

fn run(user: Option<&Value>, actual: &ActualState) -> Plan {
    let r = rules();
    plan(&r, &r.evaluate(user), actual, &PlanContext::default())
}

#[test]
#[allow(clippy::type_complexity)]
fn plans() {
    let none = ActualState {
        known: true,
        user: None,
    };
    let cases: Vec<(&str, Option<Value>, ActualState, PlanKind, Vec<&str>)> = vec![
        (
            "joiner creates",
            Some(scim("Engineering", true)),
            none.clone(),
            PlanKind::Create,
            vec![
                "create_user",
                "add_group:all-staff",
                "add_group:eng",
                "licenses:+e5-",
            ],
        ),
        (
            "joiner existing user",
            Some(scim("Engineering", true)),
            existing("Engineering", true, &[], &[], &[]),
            PlanKind::Update,
            vec!["add_group:all-staff", "add_group:eng", "licenses:+e5-"],
        ),
        (
            "mover eng -> support: attrs, role removes, adds, license swap, removes, role adds",
            Some(scim("IT", true)),
            existing("Engineering", true, &["all-staff", "eng"], &["e5"], &[]),
            PlanKind::Update,
            vec![
                "update:department",
                "add_group:support",
                "licenses:+e3-e5",
                "remove_group:eng",
                "add_role:helpdesk",
            ],
        ),
        (
            "mover support -> eng removes the role before anything else",
            Some(scim("Engineering", true)),
            existing(
                "IT",
                true,
                &["all-staff", "support"],
                &["e3"],
                &["helpdesk"],
            ),
            PlanKind::Update,
            vec![
                "update:department",
                "remove_role:helpdesk",
                "add_group:eng",
                "licenses:+e5-e3",
                "remove_group:support",
            ],
        ),
        (
            "no-op",
            Some(scim("Engineering", true)),
            existing("Engineering", true, &["all-staff", "eng"], &["e5"], &[]),
            PlanKind::Update,
            vec![],
        ),
        (
            "leaver (inactive)",
            Some(scim("IT", false)),
            existing(
                "IT",
                true,
                &["all-staff", "support"],
                &["e3"],
                &["helpdesk"],
            ),
            PlanKind::Leaver,
            vec![
                "disable_account",
                "revoke_sessions",
                "remove_role:helpdesk",
                "remove_group:all-staff",
                "remove_group:support",
                "licenses:+-e3",
            ],
        ),
        (
            "leaver (deleted)",
            None,
            existing("IT", true, &["eng"], &[], &[]),
            PlanKind::Leaver,
            vec!["disable_account", "revoke_sessions", "remove_group:eng"],
        ),
        (
            "leaver already done",
            Some(scim("IT", false)),
            existing("IT", false, &[], &[], &[]),
            PlanKind::Leaver,
            vec![],
        ),
        (
            "leaver without Graph user",
            None,
            none.clone(),
            PlanKind::Leaver,
            vec![],
        ),
        (
            "re-hire restores",
            Some(scim("Engineering", true)),
            existing("Engineering", false, &[], &[], &[]),
            PlanKind::Rehire,
            vec![
                "update:accountEnabled",
                "add_group:all-staff",
                "add_group:eng",
                "licenses:+e5-",
            ],
        ),
    ];
    for (name, user, actual, kind, want) in cases {
        let p = run(user.as_ref(), &actual);
        assert_eq!(p.kind, kind, "{name}");
        assert_eq!(labels(&p), want, "{name}");
        assert_eq!(p.is_noop(), want.is_empty(), "{name}");
    }
}

#[test]
fn create_step_carries_attributes_and_is_serialisable() {
    let p = run(
        Some(&scim("Engineering", true)),
        &ActualState {
            known: true,
            user: None,
        },
    );
    let Step::CreateUser {
        user_principal_name,
        mail_nickname,
        display_name,
        attributes,
    } = &p.steps[0]
    else {
        panic!("{p:?}")
    };
    assert_eq!(user_principal_name, "ada@x.com");
    assert_eq!(mail_nickname, "ada");
    assert_eq!(display_name, "Ada");
    assert_eq!(attributes["usageLocation"], "US");
    assert_eq!(attributes["department"], "Engineering");
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["steps"][0]["op"], "create_user");
    assert_eq!(json["kind"], "create");
    let back: Plan = serde_json::from_value(json).unwrap();
    assert_eq!(back, p);
}

#[test]
fn unmatched_when_creation_disabled() {
    let r =
        Rules::from_toml("[catalog.groups]\ng = \"x\"\n[defaults]\ngroups = [\"g\"]\n").unwrap();
    let d = r.evaluate(Some(&scim("x", true)));
    let p = plan(
        &r,
        &d,
        &ActualState {
            known: true,
            user: None,
        },
        &PlanContext::default(),
    );
    assert_eq!(p.kind, PlanKind::Unmatched);
    assert!(p.steps.is_empty());
}

#[test]
fn plan_mode_assumes_empty_user() {
    let p = run(Some(&scim("Engineering", true)), &ActualState::default());
    assert!(!p.actual_known);
    assert_eq!(
        labels(&p)[1..],
        ["add_group:all-staff", "add_group:eng", "licenses:+e5-"]
    );
}

#[test]
fn changed_disabled_plans_reassign_license() {
    let r = Rules::from_toml(
        "[catalog.licenses]\ne5 = { sku_id = \"s\", disabled_plans = [\"p1\"] }\n[defaults]\nlicenses = [\"e5\"]\n",
    )
    .unwrap();
    let d = r.evaluate(Some(&scim("x", true)));
    let mut a = existing("x", true, &[], &["e5"], &[]);
    a.user.as_mut().unwrap().attributes = d.attributes.clone();
    let p = plan(&r, &d, &a, &PlanContext::default());
    assert!(
        matches!(&p.steps[..], [Step::AssignLicenses { add, remove }] if add[0].disabled_plans == ["p1"] && remove.is_empty())
    );
    a.user
        .as_mut()
        .unwrap()
        .licenses
        .insert("e5".into(), vec!["P1".into()]);
    assert!(plan(&r, &d, &a, &PlanContext::default()).is_noop());
}

#[test]
fn hard_delete_after_retention() {
    let r = rules();
    let d = r.evaluate(None);
    let a = existing("IT", false, &[], &[], &[]);
    let left = time::macros::datetime!(2026-01-01 00:00 UTC);
    let ctx = |days: i64| PlanContext {
        left_at: Some(left),
        now: Some(left + time::Duration::days(days)),
        ..PlanContext::default()
    };
    assert!(plan(&r, &d, &a, &ctx(29)).is_noop());
    assert_eq!(labels(&plan(&r, &d, &a, &ctx(30))), ["delete_user"]);
    assert_eq!(
        delete_due_at(&r, left),
        Some(left + time::Duration::days(30))
    );
}

#[test]
fn manager_is_set_by_graph_id() {
    let r = rules();
    let mut u = scim("Engineering", true);
    u[ENTERPRISE]["manager"] = json!({"value": "scim-mgr"});
    let d = r.evaluate(Some(&u));
    let a = existing("Engineering", true, &["all-staff", "eng"], &["e5"], &[]);
    let p = plan(&r, &d, &a, &PlanContext::default());
    assert!(p.is_noop() && p.notes.iter().any(|n| n.contains("scim-mgr")));
    let ctx = PlanContext {
        manager_graph_id: Some("g-mgr".into()),
        ..PlanContext::default()
    };
    assert_eq!(
        plan(&r, &d, &a, &ctx).steps,
        [Step::SetManager {
            manager_id: "g-mgr".into()
        }]
    );
}
