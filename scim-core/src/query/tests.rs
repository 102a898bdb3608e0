use super::*;
use crate::error::ScimType;
use crate::schema::{ENTERPRISE_USER_URN, GROUP_URN, Schema, USER_URN};
use serde_json::json;

/// Query parameters as (name, value) pairs.
type Pairs = &'static [(&'static str, &'static str)];

const ACME: &str = "urn:example:acme:2.0:User";

/// The builtin registry plus an extension with an integer and a `returned: request` attribute.
fn registry() -> SchemaRegistry {
    let mut r = SchemaRegistry::builtin();
    let doc = json!({"id": ACME, "attributes": [
        {"name": "level", "type": "integer"},
        {"name": "secretQuestion", "type": "string", "returned": "request"}
    ]});
    r.add_schema(Schema::from_json(&doc).unwrap());
    r.extend_resource_type("User", ACME, false).unwrap();
    r
}

fn user_query(params: QueryParams) -> Result<ListQuery> {
    let r = registry();
    let rt = r.resource_type("User").unwrap();
    ListQuery::from_params(&r, rt, &params, QueryLimits::default())
}

fn params(pairs: &[(&str, &str)]) -> QueryParams {
    let mut p = QueryParams::default();
    for (k, v) in pairs {
        let slot = match *k {
            "filter" => &mut p.filter,
            "sortBy" => &mut p.sort_by,
            "sortOrder" => &mut p.sort_order,
            "startIndex" => &mut p.start_index,
            "count" => &mut p.count,
            "attributes" => &mut p.attributes,
            "excludedAttributes" => &mut p.excluded_attributes,
            "cursor" => &mut p.cursor,
            other => panic!("unknown parameter {other}"),
        };
        *slot = Some(v.to_string());
    }
    p
}

/// (parameters, expected startIndex, expected count)
#[test]
fn paging_parameters() {
    let cases: Vec<(Pairs, u64, u64)> = vec![
        (&[], 1, 100),
        (&[("startIndex", "0")], 1, 100),
        (&[("startIndex", "-5")], 1, 100),
        (&[("startIndex", " 11 ")], 11, 100),
        (&[("count", "-1")], 1, 0),
        (&[("count", "0")], 1, 0),
        (&[("count", "5000")], 1, 1000),
        (&[("count", "99999999999999999999999")], 1, 1000),
        (&[("startIndex", "1"), ("count", "2")], 1, 2),
        (&[("startIndex", "6"), ("count", "5")], 6, 5),
        (&[("startIndex", ""), ("count", " ")], 1, 100),
    ];
    for (pairs, start, count) in cases {
        let q = user_query(params(pairs)).unwrap_or_else(|e| panic!("{pairs:?}: {e}"));
        assert_eq!((q.start_index, q.count), (start, count), "{pairs:?}");
    }
}

#[test]
fn sort_and_projection_parameters() {
    let q = user_query(params(&[
        ("sortBy", "NAME.familyName"),
        ("sortOrder", "Descending"),
        ("attributes", " userName , emails.value,nope,, urn:x:y:z"),
        ("excludedAttributes", "department"),
        ("cursor", ""),
    ]))
    .unwrap();
    let sort = q.sort.unwrap();
    assert_eq!(sort.path.to_string(), "name.familyName");
    assert_eq!(sort.order, SortOrder::Descending);
    let names: Vec<String> = q
        .projection
        .attributes
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(names, ["userName", "emails.value"]);
    assert_eq!(
        q.projection.excluded[0].to_string(),
        format!("{ENTERPRISE_USER_URN}:department")
    );
    assert_eq!(q.cursor.as_deref(), Some(""));
    assert!(q.filter.is_none());
    // sortOrder without sortBy is validated and otherwise ignored.
    assert!(
        user_query(params(&[("sortOrder", "ascending")]))
            .unwrap()
            .sort
            .is_none()
    );
    // A blank filter is no filter (and never reaches the parser).
    assert!(
        user_query(params(&[("filter", "  ")]))
            .unwrap()
            .filter
            .is_none()
    );
}

/// (parameters, scimType, text the detail must contain)
#[test]
fn parameter_errors() {
    let cases: Vec<(Pairs, ScimType, &str)> = vec![
        (
            &[("startIndex", "one")],
            ScimType::InvalidValue,
            "startIndex",
        ),
        (
            &[("startIndex", "1.5")],
            ScimType::InvalidValue,
            "startIndex",
        ),
        (&[("startIndex", "-")], ScimType::InvalidValue, "startIndex"),
        (&[("count", "+")], ScimType::InvalidValue, "count"),
        (&[("count", "ten")], ScimType::InvalidValue, "count"),
        (&[("sortOrder", "up")], ScimType::InvalidValue, "sortOrder"),
        (
            &[("sortBy", "shoeSize")],
            ScimType::InvalidValue,
            "sortBy \"shoeSize\"",
        ),
        (
            &[("sortBy", "name.nope")],
            ScimType::InvalidValue,
            "name.nope",
        ),
    ];
    for (pairs, scim_type, detail) in cases {
        let err = user_query(params(pairs)).expect_err(&format!("{pairs:?}"));
        assert_eq!(err.scim_type(), Some(scim_type), "{pairs:?}: {err}");
        assert!(err.detail().contains(detail), "{pairs:?}: {}", err.detail());
    }
}

/// Needs the filter branch (`Filter::parse`): passes once it is merged into main.
#[test]
fn needs_filter_branch_from_params_parses_filter() {
    let q = user_query(params(&[("filter", "userName eq \"bjensen\"")])).unwrap();
    assert!(q.filter.is_some());
    let err = user_query(params(&[("filter", "userName eq")])).unwrap_err();
    assert_eq!(err.scim_type(), Some(ScimType::InvalidFilter));
}

/// Needs the filter branch (`Filter::parse` and `matches`): passes once it is merged into main.
#[test]
fn needs_filter_branch_run_filters_before_paging() {
    let r = registry();
    let rt = r.resource_type("User").unwrap();
    let q = ListQuery::from_params(
        &r,
        rt,
        &params(&[("filter", "userName eq \"B\""), ("count", "10")]),
        QueryLimits::default(),
    )
    .unwrap();
    let page = q.run(&r, rt, vec![user("1", "a"), user("2", "b"), user("3", "c")]);
    assert_eq!(page.total_results, 1);
    assert_eq!(page.resources[0]["id"], "2");
}

#[test]
fn search_body() {
    let r = registry();
    let rt = r.resource_type("User").unwrap();
    let search = |body: Value| ListQuery::from_search(&r, rt, body, QueryLimits::default());
    let q = search(json!({
        "schemas": [SEARCH_REQUEST_URN],
        "attributes": ["userName", "name.givenName"],
        "excludedAttributes": null,
        "sortBy": "userName",
        "sortOrder": "descending",
        "startIndex": 3,
        "count": 10
    }))
    .unwrap();
    assert_eq!((q.start_index, q.count), (3, 10));
    assert_eq!(q.projection.attributes.len(), 2);
    assert_eq!(q.sort.unwrap().order, SortOrder::Descending);
    // Lenient: names in any case, numbers as strings, a comma-separated list, no schemas.
    let q = search(json!({"COUNT": "5", "startindex": "2", "ExcludedAttributes": "emails,name"}))
        .unwrap();
    assert_eq!((q.start_index, q.count), (2, 5));
    assert_eq!(q.projection.excluded.len(), 2);
    // Errors name the member.
    let cases: Vec<(Value, ScimType, &str)> = vec![
        (json!([1]), ScimType::InvalidSyntax, "JSON object"),
        (
            json!({"attributes": [1]}),
            ScimType::InvalidSyntax,
            "attributes",
        ),
        (json!({"count": 1.5}), ScimType::InvalidValue, "count"),
        (
            json!({"startIndex": {"a": 1}}),
            ScimType::InvalidSyntax,
            "startIndex",
        ),
        (
            json!({"sortOrder": "sideways"}),
            ScimType::InvalidValue,
            "sortOrder",
        ),
    ];
    for (body, scim_type, detail) in cases {
        let err = search(body.clone()).expect_err(&body.to_string());
        assert_eq!(err.scim_type(), Some(scim_type), "{body}: {err}");
        assert!(err.detail().contains(detail), "{body}: {}", err.detail());
    }
}

fn full_user() -> Value {
    json!({
        "schemas": [USER_URN, ENTERPRISE_USER_URN, ACME],
        "id": "1",
        "externalId": "e1",
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "b@x", "type": "work", "primary": true}, {"value": "b@y", "type": "home"}],
        "password": "never-shown",
        "favouriteColour": "teal",
        ENTERPRISE_USER_URN: {"department": "Tour", "manager": {"value": "2"}},
        ACME: {"level": 3, "secretQuestion": "pet"},
        "meta": {"resourceType": "User", "lastModified": "2024-01-01T00:00:00Z", "version": "W/\"1\""}
    })
}

fn projected(pairs: &[(&str, &str)]) -> Value {
    let r = registry();
    let rt = r.resource_type("User").unwrap();
    user_query(params(pairs))
        .unwrap()
        .projection
        .apply(&r, rt, full_user())
}

/// (attributes / excludedAttributes, expected representation)
#[test]
fn projection_table() {
    let cases: Vec<(Pairs, Value)> = vec![
        (
            &[],
            json!({
                "schemas": [USER_URN, ENTERPRISE_USER_URN, ACME], "id": "1", "externalId": "e1", "userName": "bjensen",
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "emails": [{"value": "b@x", "type": "work", "primary": true}, {"value": "b@y", "type": "home"}],
                "favouriteColour": "teal",
                ENTERPRISE_USER_URN: {"department": "Tour", "manager": {"value": "2"}},
                ACME: {"level": 3},
                "meta": {"resourceType": "User", "lastModified": "2024-01-01T00:00:00Z", "version": "W/\"1\""}
            }),
        ),
        (
            &[("attributes", "userName")],
            json!({"schemas": [USER_URN], "id": "1", "userName": "bjensen"}),
        ),
        (
            &[("attributes", "id")],
            json!({"schemas": [USER_URN], "id": "1"}),
        ),
        (
            &[("attributes", "name.givenName,emails.value")],
            json!({"schemas": [USER_URN], "id": "1", "name": {"givenName": "Barbara"},
                   "emails": [{"value": "b@x"}, {"value": "b@y"}]}),
        ),
        (
            &[("attributes", "department")],
            json!({"schemas": [USER_URN, ENTERPRISE_USER_URN], "id": "1", ENTERPRISE_USER_URN: {"department": "Tour"}}),
        ),
        (
            &[(
                "attributes",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            )],
            json!({"schemas": [USER_URN, ENTERPRISE_USER_URN], "id": "1", ENTERPRISE_USER_URN: {"manager": {"value": "2"}}}),
        ),
        (
            &[("attributes", "secretQuestion,password")],
            json!({"schemas": [USER_URN, ACME], "id": "1", ACME: {"secretQuestion": "pet"}}),
        ),
        (
            &[("attributes", "nope,alsoNope")],
            json!({"schemas": [USER_URN], "id": "1"}),
        ),
        (
            &[(
                "attributes",
                "userName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:user",
            )],
            json!({"schemas": [USER_URN, ENTERPRISE_USER_URN], "id": "1", "userName": "bjensen",
                   ENTERPRISE_USER_URN: {"department": "Tour", "manager": {"value": "2"}}}),
        ),
        (
            &[(
                "excludedAttributes",
                "urn:example:acme:2.0:User,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User,name,emails,meta,externalId",
            )],
            json!({"schemas": [USER_URN], "id": "1", "userName": "bjensen", "favouriteColour": "teal"}),
        ),
        (
            &[("attributes", "meta.lastModified")],
            json!({"schemas": [USER_URN], "id": "1", "meta": {"lastModified": "2024-01-01T00:00:00Z"}}),
        ),
        (
            &[(
                "excludedAttributes",
                "emails,name.givenName,id,meta,externalId,favouriteColour,level",
            )],
            json!({
                "schemas": [USER_URN, ENTERPRISE_USER_URN], "id": "1", "userName": "bjensen",
                "name": {"familyName": "Jensen"},
                "favouriteColour": "teal",
                ENTERPRISE_USER_URN: {"department": "Tour", "manager": {"value": "2"}}
            }),
        ),
        (
            &[(
                "excludedAttributes",
                "department,manager,name,emails,meta,externalId,favouriteColour,urn:example:acme:2.0:User:level",
            )],
            json!({"schemas": [USER_URN], "id": "1", "userName": "bjensen", "favouriteColour": "teal"}),
        ),
    ];
    for (pairs, want) in cases {
        assert_eq!(projected(pairs), want, "{pairs:?}");
    }
}

#[test]
fn projection_for_a_single_resource() {
    let r = registry();
    let rt = r.resource_type("Group").unwrap();
    let p = Projection::parse(&r, rt, None, Some(" Members "));
    assert!(!p.includes_members() && !p.is_default());
    assert!(Projection::parse(&r, rt, Some(""), None).is_default());
}

#[test]
fn group_excluded_members() {
    let r = registry();
    let rt = r.resource_type("Group").unwrap();
    let q = ListQuery::from_params(
        &r,
        rt,
        &params(&[("excludedAttributes", "members")]),
        QueryLimits::default(),
    )
    .unwrap();
    let g = json!({"schemas": [GROUP_URN], "id": "g", "displayName": "Sales", "members": [{"value": "u"}]});
    assert_eq!(
        q.projection.apply(&r, rt, g),
        json!({"schemas": [GROUP_URN], "id": "g", "displayName": "Sales"})
    );
}

/// (resource type, parameters, includes_members)
#[test]
fn includes_members_table() {
    let cases: Vec<(Pairs, bool)> = vec![
        (&[], true),
        (&[("excludedAttributes", "members")], false),
        (&[("excludedAttributes", "MEMBERS")], false),
        (&[("excludedAttributes", "members.display")], true),
        (&[("attributes", "displayName")], false),
        (&[("attributes", "members.value")], true),
        (&[("attributes", "displayName,members")], true),
    ];
    let r = registry();
    let rt = r.resource_type("Group").unwrap();
    for (pairs, want) in cases {
        let q = ListQuery::from_params(&r, rt, &params(pairs), QueryLimits::default()).unwrap();
        assert_eq!(q.projection.includes_members(), want, "{pairs:?}");
        let members = r.resolve_str(rt, "members").unwrap();
        assert_eq!(q.projection.includes(&members), want, "includes {pairs:?}");
    }
}

/// (parameters, path, included)
#[test]
fn includes_table() {
    let cases: Vec<(Pairs, &str, bool)> = vec![
        (&[], "userName", true),
        (&[], "password", false),
        (&[], "secretQuestion", false),
        (&[("attributes", "secretQuestion")], "secretQuestion", true),
        (&[("attributes", "userName")], "id", true),
        (&[("attributes", "userName")], "emails", false),
        (&[("attributes", "name.givenName")], "name", true),
        (
            &[("attributes", "name.givenName")],
            "name.familyName",
            false,
        ),
        (&[("excludedAttributes", "name.givenName")], "name", true),
        (
            &[("excludedAttributes", "name.givenName")],
            "name.givenName",
            false,
        ),
        (&[("excludedAttributes", "id")], "id", true),
        (&[("excludedAttributes", "manager")], "manager.value", false),
    ];
    let r = registry();
    let rt = r.resource_type("User").unwrap();
    for (pairs, path, want) in cases {
        let q = user_query(params(pairs)).unwrap();
        let path_r = r.resolve_str(rt, path).unwrap();
        assert_eq!(q.projection.includes(&path_r), want, "{pairs:?} {path}");
    }
}

fn user(id: &str, user_name: &str) -> Value {
    json!({"schemas": [USER_URN], "id": id, "userName": user_name})
}

fn sorted(path: &str, order: SortOrder, mut resources: Vec<Value>) -> Vec<String> {
    let r = registry();
    let rt = r.resource_type("User").unwrap();
    let sort = Sort {
        path: r.resolve_str(rt, path).unwrap(),
        order,
    };
    sort_resources(&mut resources, &sort);
    resources
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sorting() {
    use SortOrder::{Ascending as Asc, Descending as Desc};
    // userName is case-insensitive; ties broken by id; missing last in both directions.
    let users = || {
        vec![
            user("4", "bob"),
            json!({"id": "5"}),
            user("3", "Alice"),
            user("1", "carol"),
            user("2", "alice"),
        ]
    };
    assert_eq!(sorted("userName", Asc, users()), ["2", "3", "4", "1", "5"]);
    assert_eq!(sorted("userName", Desc, users()), ["1", "4", "2", "3", "5"]);
    // externalId is caseExact: "B" < "a" in code-point order.
    let ext = |id: &str, e: &str| json!({"id": id, "externalId": e});
    assert_eq!(
        sorted("externalId", Asc, vec![ext("1", "a"), ext("2", "B")]),
        ["2", "1"]
    );
    // Integers compare numerically, not as text.
    let lvl = |id: &str, l: i64| json!({"id": id, ACME: {"level": l}});
    assert_eq!(
        sorted(
            "level",
            Asc,
            vec![lvl("1", 10), lvl("2", 9), json!({"id": "0"})]
        ),
        ["2", "1", "0"]
    );
    // dateTime chronologically, whatever the offset notation.
    let at = |id: &str, t: &str| json!({"id": id, "meta": {"lastModified": t}});
    assert_eq!(
        sorted(
            "meta.lastModified",
            Desc,
            vec![
                at("1", "2024-01-01T10:00:00+02:00"),
                at("2", "2024-01-01T09:00:00Z")
            ]
        ),
        ["2", "1"]
    );
    // Multi-valued: the primary value, else the first.
    let mails = |id: &str, m: Value| json!({"id": id, "emails": m});
    assert_eq!(
        sorted(
            "emails.value",
            Asc,
            vec![
                mails(
                    "1",
                    json!([{"value": "a@x"}, {"value": "z@x", "primary": true}])
                ),
                mails("2", json!([{"value": "m@x"}])),
            ]
        ),
        ["2", "1"]
    );
    // Booleans: false first; a complex attribute sorts by its value.
    let act = |id: &str, a: bool| json!({"id": id, "active": a});
    assert_eq!(
        sorted("active", Asc, vec![act("1", true), act("2", false)]),
        ["2", "1"]
    );
    let mgr = |id: &str, m: &str| json!({"id": id, ENTERPRISE_USER_URN: {"manager": {"value": m}}});
    assert_eq!(
        sorted("manager", Asc, vec![mgr("1", "b"), mgr("2", "a")]),
        ["2", "1"]
    );
}

#[test]
fn list_response_wire_form() {
    let empty = ListResponse::new(0, 1, Vec::new()).to_json();
    assert_eq!(
        empty,
        json!({"schemas": [LIST_RESPONSE_URN], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []})
    );
    let mut page = ListResponse::new(7, 6, vec![user("6", "f"), user("7", "g")]);
    page.next_cursor = Some("abc".into());
    let body = page.to_json();
    assert_eq!(body["itemsPerPage"], 2);
    assert_eq!(body["totalResults"], 7);
    assert_eq!(body["nextCursor"], "abc");
    assert!(body["Resources"].is_array());
}

#[test]
fn run_pages_and_projects() {
    let r = registry();
    let rt = r.resource_type("User").unwrap();
    let all = || {
        (1..=5)
            .map(|i| user(&i.to_string(), &format!("u{i}")))
            .collect::<Vec<_>>()
    };
    let q = user_query(params(&[
        ("startIndex", "2"),
        ("count", "2"),
        ("sortBy", "userName"),
        ("sortOrder", "descending"),
    ]))
    .unwrap();
    let page = q.run(&r, rt, all());
    assert_eq!(page.total_results, 5);
    assert_eq!(page.start_index, 2);
    let ids: Vec<&str> = page
        .resources
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["4", "3"]);
    // count=0: totals only.
    let q = user_query(params(&[("count", "0")])).unwrap();
    let page = q.run(&r, rt, all());
    assert_eq!((page.total_results, page.resources.len()), (5, 0));
    // startIndex past the end: an empty page, still the full total.
    let q = user_query(params(&[("startIndex", "99")])).unwrap();
    assert_eq!(q.run(&r, rt, all()).to_json()["Resources"], json!([]));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn sort_by_user_name(order: SortOrder, names: &[Option<String>]) -> Vec<Value> {
        let mut resources: Vec<Value> = names
            .iter()
            .enumerate()
            .map(|(i, n)| match n {
                Some(n) => json!({"id": format!("{i:03}"), "userName": n}),
                None => json!({"id": format!("{i:03}")}),
            })
            .collect();
        let r = registry();
        let rt = r.resource_type("User").unwrap();
        let sort = Sort {
            path: r.resolve_str(rt, "userName").unwrap(),
            order,
        };
        sort_resources(&mut resources, &sort);
        resources
    }

    proptest! {
        /// Sorting is a permutation; present values are ordered case-insensitively with ties
        /// by id; missing values come last, by id, in both directions.
        #[test]
        fn sort_orders_present_values_and_puts_missing_last(
            names in proptest::collection::vec(proptest::option::of("[a-cA-C]{0,2}"), 0..12),
            descending in any::<bool>(),
        ) {
            let order = if descending { SortOrder::Descending } else { SortOrder::Ascending };
            let sorted = sort_by_user_name(order, &names);
            prop_assert_eq!(sorted.len(), names.len());
            let key = |v: &Value| v.get("userName").and_then(Value::as_str)
                .filter(|s| !s.is_empty()).map(str::to_lowercase);
            let first_missing = sorted.iter().position(|v| key(v).is_none()).unwrap_or(sorted.len());
            prop_assert!(sorted[first_missing..].iter().all(|v| key(v).is_none()));
            for pair in sorted.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                match (key(a), key(b)) {
                    (Some(x), Some(y)) if x == y => prop_assert!(a["id"].as_str() < b["id"].as_str()),
                    (Some(x), Some(y)) if descending => prop_assert!(x > y),
                    (Some(x), Some(y)) => prop_assert!(x < y),
                    (None, None) => prop_assert!(a["id"].as_str() < b["id"].as_str()),
                    _ => {}
                }
            }
        }

        /// Projecting twice is projecting once.
        #[test]
        fn projection_is_idempotent(
            attrs in proptest::sample::subsequence(
                vec!["userName", "name.givenName", "emails.value", "department", "meta", "secretQuestion", "nope"], 0..4),
            excluded in proptest::sample::subsequence(
                vec!["emails", "name.familyName", "manager", "id", "level"], 0..3),
        ) {
            let r = registry();
            let rt = r.resource_type("User").unwrap();
            let p = params(&[]);
            let p = QueryParams {
                attributes: Some(attrs.join(",")).filter(|s| !s.is_empty()),
                excluded_attributes: Some(excluded.join(",")).filter(|s| !s.is_empty()),
                ..p
            };
            let q = ListQuery::from_params(&r, rt, &p, QueryLimits::default()).unwrap();
            let once = q.projection.apply(&r, rt, full_user());
            let twice = q.projection.apply(&r, rt, once.clone());
            prop_assert_eq!(&once, &twice);
            prop_assert_eq!(&once["id"], "1");
            prop_assert!(once.get("password").is_none());
        }
    }
}
