//! Users shared by the filter, sort and paging checks, created once per run with
//! run-specific names and deleted at the end of the run.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::ctx::{Ctx, ENTERPRISE, Stop, USER, id_of};

/// The filter/sort fixture: prefix and name -> id.
pub(crate) struct People {
    pub prefix: String,
    pub ids: BTreeMap<String, String>,
}

impl People {
    pub fn name_of(&self, id: &str) -> Option<&str> {
        self.ids
            .iter()
            .find(|(_, v)| *v == id)
            .map(|(k, _)| k.as_str())
    }
}

/// Four users with known attributes (see the table in the source).
///
/// | key   | userName    | family | title    | userType   | active | emails            | dept  |
/// |-------|-------------|--------|----------|------------|--------|-------------------|-------|
/// | alice | P-alice     | Archer | Engineer | Employee   | true   | work(primary), home | R&D |
/// | bob   | P-Bob       | Baker  | Manager  | Contractor | false  | work              | Sales |
/// | carol | P-carol     | Cole   | engineer | Employee   | true   | home              | -     |
/// | dave  | P-dave      | Dunn   | -        | Intern     | true   | work              | -     |
pub(crate) fn people(ctx: &mut Ctx) -> Result<People, Stop> {
    if let Some(v) = ctx.fixtures.get("people") {
        return Ok(from_value(v));
    }
    if ctx.fixtures.contains_key("people-failed") {
        return Err(ctx.fail_with(
            "the shared filter fixture users",
            "their creation failed in an earlier check",
        ));
    }
    ctx.fixtures.insert("people-failed", Value::Null);
    let p = format!("cf-{}-fx", ctx.run_id);
    let specs = [
        (
            "alice",
            json!({"userName": format!("{p}-alice"), "name": {"givenName": "Alice", "familyName": "Archer"}, "title": "Engineer",
            "nickName": "ali", "externalId": format!("{p}-ExtA"), "userType": "Employee", "active": true,
            "emails": [{"type": "work", "value": format!("alice@{p}.example.com"), "primary": true}, {"type": "home", "value": format!("alice.home@{p}.example.org")}],
            "schemas": [USER, ENTERPRISE], ENTERPRISE: {"department": "R&D"}}),
        ),
        (
            "bob",
            json!({"userName": format!("{p}-Bob"), "name": {"givenName": "Bob", "familyName": "Baker"}, "title": "Manager",
            "externalId": format!("{p}-ExtB"), "userType": "Contractor", "active": false,
            "emails": [{"type": "work", "value": format!("bob@{p}.example.com")}],
            "schemas": [USER, ENTERPRISE], ENTERPRISE: {"department": "Sales"}}),
        ),
        (
            "carol",
            json!({"userName": format!("{p}-carol"), "name": {"givenName": "Carol", "familyName": "Cole"}, "title": "engineer",
            "userType": "Employee", "active": true, "emails": [{"type": "home", "value": format!("carol@{p}.example.org")}], "schemas": [USER]}),
        ),
        (
            "dave",
            json!({"userName": format!("{p}-dave"), "name": {"givenName": "Dave", "familyName": "Dunn"},
            "userType": "Intern", "active": true, "emails": [{"type": "work", "value": format!("dave@{p}.example.com")}], "schemas": [USER]}),
        ),
    ];
    let mut ids = BTreeMap::new();
    for (key, body) in specs {
        let created = ctx.create_raw("/Users", &body);
        ctx.keep_for_run();
        ids.insert(key.to_string(), id_of(&created?));
    }
    let v = json!({"prefix": p, "ids": ids});
    ctx.fixtures.remove("people-failed");
    ctx.fixtures.insert("people", v.clone());
    Ok(from_value(&v))
}

fn from_value(v: &Value) -> People {
    People {
        prefix: v["prefix"].as_str().unwrap_or_default().to_string(),
        ids: v["ids"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Number of users in the paging fixture.
pub(crate) const PAGE_USERS: usize = 12;

/// Twelve users named `cf-<run>-pg-NN`; returns (prefix, ids).
pub(crate) fn page_users(ctx: &mut Ctx) -> Result<(String, Vec<String>), Stop> {
    if let Some(v) = ctx.fixtures.get("paging") {
        let ids = v["ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        return Ok((v["prefix"].as_str().unwrap_or_default().to_string(), ids));
    }
    if ctx.fixtures.contains_key("paging-failed") {
        return Err(ctx.fail_with(
            "the shared paging fixture users",
            "their creation failed in an earlier check",
        ));
    }
    ctx.fixtures.insert("paging-failed", Value::Null);
    let p = format!("cf-{}-pg", ctx.run_id);
    let mut ids = Vec::new();
    for i in 0..PAGE_USERS {
        let body = json!({"schemas": [USER], "userName": format!("{p}-{i:02}"), "name": {"givenName": "Page", "familyName": format!("User{i:02}")}, "active": true});
        let created = ctx.create_raw("/Users", &body);
        ctx.keep_for_run();
        ids.push(id_of(&created?));
    }
    ctx.fixtures.remove("paging-failed");
    ctx.fixtures
        .insert("paging", json!({"prefix": p, "ids": ids}));
    Ok((p, ids))
}
