use serde_json::{Value, json};

use super::*;

pub(crate) const EXAMPLE: &str = r#"
[match]
scim = "userName"
graph = "userPrincipalName"
[create]
enabled = false
usage_location = "US"
[catalog.groups]
all-staff = "00000000-0000-0000-0000-0000000000a1"
eng = "00000000-0000-0000-0000-0000000000a2"
[catalog.licenses]
e5 = { sku_id = "00000000-0000-0000-0000-0000000000b1", disabled_plans = [] }
[catalog.roles]
helpdesk = { role_definition_id = "00000000-0000-0000-0000-0000000000c1", directory_scope_id = "/" }
[defaults]
groups = ["all-staff"]
[[rule]]
name = "engineering"
when = { department = "Engineering" }
groups = ["eng"]
licenses = ["e5"]
[[rule]]
name = "support"
when = { department = { in = ["IT", "Service Desk"] }, title = { starts_with = "Support" } }
roles = ["helpdesk"]
"#;

fn user(dept: &str, title: &str) -> Value {
    json!({
        "userName": "ada@example.com",
        "title": title,
        "active": true,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        scim_core::schema::ENTERPRISE_USER_URN: {"department": dept, "employeeNumber": "42", "manager": {"value": "mgr-1"}}
    })
}

fn names(s: &std::collections::BTreeSet<String>) -> Vec<&str> {
    s.iter().map(String::as_str).collect()
}

#[test]
#[allow(clippy::type_complexity)]
fn example_file_evaluates() {
    let rules = Rules::from_toml(EXAMPLE).unwrap();
    // (department, title) -> (groups, licenses, roles, matched rules)
    let cases: &[(&str, &str, &[&str], &[&str], &[&str], &[&str])] = &[
        (
            "Engineering",
            "Dev",
            &["all-staff", "eng"],
            &["e5"],
            &[],
            &["engineering"],
        ),
        (
            "engineering",
            "Dev",
            &["all-staff", "eng"],
            &["e5"],
            &[],
            &["engineering"],
        ),
        (
            "IT",
            "Support Engineer",
            &["all-staff"],
            &[],
            &["helpdesk"],
            &["support"],
        ),
        (
            "service desk",
            "support lead",
            &["all-staff"],
            &[],
            &["helpdesk"],
            &["support"],
        ),
        ("IT", "Manager", &["all-staff"], &[], &[], &[]),
        ("Sales", "Support", &["all-staff"], &[], &[], &[]),
    ];
    for (dept, title, groups, licenses, roles, matched) in cases {
        let d = rules.evaluate(Some(&user(dept, title)));
        assert!(d.exists && d.account_enabled);
        assert_eq!(names(&d.groups), *groups, "{dept}/{title}");
        assert_eq!(names(&d.licenses), *licenses, "{dept}/{title}");
        assert_eq!(names(&d.roles), *roles, "{dept}/{title}");
        assert_eq!(d.matched_rules, *matched, "{dept}/{title}");
    }
    let d = rules.evaluate(Some(&user("Engineering", "Dev")));
    assert_eq!(d.attributes["department"], "Engineering");
    assert_eq!(d.attributes["employeeId"], "42");
    assert_eq!(d.attributes["displayName"], "Ada Lovelace");
    assert_eq!(d.attributes["usageLocation"], "US");
    assert_eq!(d.manager.as_deref(), Some("mgr-1"));
    assert_eq!(d.match_value.as_deref(), Some("ada@example.com"));
}

#[test]
fn leavers_get_nothing() {
    let rules = Rules::from_toml(EXAMPLE).unwrap();
    let mut u = user("Engineering", "Dev");
    u["active"] = json!(false);
    let d = rules.evaluate(Some(&u));
    assert!(d.exists && !d.account_enabled && d.is_leaver());
    assert!(d.groups.is_empty() && d.licenses.is_empty() && d.roles.is_empty());
    let gone = rules.evaluate(None);
    assert!(!gone.exists && gone.is_leaver());
}

#[test]
fn operators() {
    let u = json!({
        "userName": "u", "userType": "Employee", "title": "Support Engineer",
        "addresses": [{"type": "work", "country": "DE"}],
        "emails": [{"type": "work", "value": "u@x"}],
        scim_core::schema::ENTERPRISE_USER_URN: {"department": "IT", "costCenter": "", "manager": {"value": "m"}}
    });
    let cases: &[(&str, bool)] = &[
        (r#"userType = "employee""#, true),
        (r#"userType = { eq = "Contractor" }"#, false),
        (r#"userType = { ne = "Contractor" }"#, true),
        (r#"nickName = { ne = "x" }"#, true),
        (r#"department = { in = ["it", "HR"] }"#, true),
        (r#"department = { not_in = ["IT"] }"#, false),
        (r#"title = { starts_with = "support" }"#, true),
        (r#"title = { starts_with = "Eng" }"#, false),
        (r#"costCenter = { exists = false }"#, true),
        (r#"manager = { exists = true }"#, true),
        (r#"'manager.value' = "M""#, true),
        (r#"division = { exists = true }"#, false),
        (r#"'addresses[type eq "work"].country' = "de""#, true),
        (
            r#"'addresses[type eq "home"].country' = { exists = true }"#,
            false,
        ),
        (
            r#"'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department' = "IT""#,
            true,
        ),
        (r#"'emails.value' = "u@x""#, true),
        // inside `[...]`: every RFC 7644 filter operator, case per the sub-attribute's caseExact
        (r#"'emails[value co "@"].type' = "work""#, true),
        (
            r#"'emails[type eq "WORK" or type eq "other"].value' = "u@x""#,
            true,
        ),
        (
            r#"'addresses[not (type eq "work")].country' = { exists = true }"#,
            false,
        ),
        (
            r#"title = { starts_with = "Support", ne = "Support Engineer" }"#,
            false,
        ),
    ];
    for (when, want) in cases {
        let text = format!(
            "[catalog.groups]\ng = \"id\"\n[[rule]]\nname = \"r\"\ngroups = [\"g\"]\n[rule.when]\n{when}\n"
        );
        let rules = Rules::from_toml(&text).unwrap_or_else(|e| panic!("{when}: {e}"));
        let d = rules.evaluate(Some(&u));
        assert_eq!(d.groups.contains("g"), *want, "{when}");
    }
}

#[test]
fn validation_errors_name_rule_and_key() {
    let base =
        "[catalog.groups]\ng = \"id\"\n[catalog.roles]\nr = { role_definition_id = \"x\" }\n";
    let cases: &[(&str, &str)] = &[
        (
            "[[rule]]\nname = \"a\"\ngroups = [\"nope\"]\n",
            "rule \"a\": unknown group \"nope\"",
        ),
        (
            "[[rule]]\nname = \"a\"\nroles = [\"admin\"]\n",
            "rule \"a\": unknown role \"admin\"",
        ),
        (
            "[[rule]]\nname = \"a\"\nlicenses = [\"e3\"]\n",
            "rule \"a\": unknown license \"e3\"",
        ),
        (
            "[defaults]\ngroups = [\"x\"]\n",
            "rule \"defaults\": unknown group \"x\"",
        ),
        (
            "[[rule]]\nname = \"a\"\nwhen = { title = { like = \"x\" } }\n",
            "rule \"a\": when.title: unknown operator \"like\"",
        ),
        (
            "[[rule]]\nname = \"a\"\nwhen = { 'emails[type like \"w\"].value' = \"x\" }\n",
            "rule \"a\": when.emails[type like \"w\"].value: bad attribute path",
        ),
        (
            "[[rule]]\nname = \"a\"\nwhen = { '9x' = \"x\" }\n",
            "when.9x: bad attribute path",
        ),
        (
            "[[rule]]\nname = \"a\"\nwhen = { title = [\"x\"] }\n",
            "rule \"a\": when.title: a list needs an operator",
        ),
        (
            "[[rule]]\nname = \"a\"\nwhen = { title = { in = \"x\" } }\n",
            "when.title: in: expected a non-empty list",
        ),
        (
            "[[rule]]\nname = \"a\"\nwhen = { title = { exists = \"yes\" } }\n",
            "when.title: exists: expected true or false",
        ),
        (
            "[[rule]]\nname = \"a\"\n[[rule]]\nname = \"a\"\n",
            "rule \"a\": duplicate rule name",
        ),
        (
            "[match]\nscim = \"userName\"\ngraph = \"displayName\"\n",
            "match.graph",
        ),
        (
            "[create]\nusage_location = \"USA\"\n",
            "create.usage_location",
        ),
        (
            "[[rule]]\nname = \"a\"\nbogus = 1\n",
            "unknown field `bogus`",
        ),
        (
            "[catalog.licenses]\ne5 = { sku = \"x\" }\n",
            "unknown field `sku`",
        ),
    ];
    for (extra, want) in cases {
        let err = Rules::from_toml(&format!("{base}{extra}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{extra:?}: got {err:?}, want {want:?}");
    }
}

#[test]
fn match_on_other_attributes() {
    let rules =
        Rules::from_toml("[match]\nscim = \"employeeNumber\"\ngraph = \"employeeId\"\n").unwrap();
    assert_eq!(rules.match_value(&user("x", "y")).as_deref(), Some("42"));
    let rules = Rules::from_toml("[match]\nscim = \"externalId\"\ngraph = \"id\"\n").unwrap();
    assert_eq!(rules.match_value(&user("x", "y")), None);
}
