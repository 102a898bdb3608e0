use super::*;
use crate::error::ScimType;
use serde_json::json;

fn op(method: BulkMethod, bulk_id: Option<&str>, path: &str, data: Value) -> BulkOperation {
    BulkOperation {
        method,
        bulk_id: bulk_id.map(str::to_string),
        version: None,
        path: path.into(),
        data: Some(data),
    }
}

#[test]
fn parses_the_hr_push_shape() {
    // Entra API-driven inbound provisioning: failOnErrors null, every record a POST /Users,
    // one bulkId used twice (reference §3.2).
    let record = |n: &str| {
        json!({"method": "POST", "bulkId": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee", "path": "/Users",
               "data": {"externalId": n, "userName": format!("{n}@example.com"), "active": true}})
    };
    let body = json!({
        "schemas": [BULK_REQUEST_URN],
        "Operations": [record("701984"), record("701985")],
        "failOnErrors": null
    });
    let req = BulkRequest::parse(body, 50).unwrap();
    assert_eq!(req.fail_on_errors, None);
    assert_eq!(req.operations.len(), 2);
    assert_eq!(req.operations[1].method, BulkMethod::Post);
    assert_eq!(req.operations[1].target(), ("/Users", None));
    assert_eq!(execution_order(&req.operations).unwrap(), [0, 1]);
}

#[test]
fn parses_every_method_and_field() {
    let body = json!({
        "failonerrors": 2,
        "operations": [
            {"method": "post", "path": "/Users", "data": {"userName": "a"}},
            {"Method": "Put", "Path": "/Users/u1", "Version": "W/\"3\"", "Data": {"userName": "b"}},
            {"method": "PATCH", "path": "/Groups/bulkId:g1", "data": {"Operations": []}},
            {"method": "delete", "path": "/Users/u2/", "data": {"ignored": true}},
            {"method": "POST", "bulkId": 7, "path": "/Groups", "data": {"displayName": "G"}}
        ]
    });
    let req = BulkRequest::parse(body, 10).unwrap();
    assert_eq!(req.fail_on_errors, Some(2));
    let methods: Vec<&str> = req.operations.iter().map(|o| o.method.as_str()).collect();
    assert_eq!(methods, ["POST", "PUT", "PATCH", "DELETE", "POST"]);
    assert_eq!(req.operations[1].version.as_deref(), Some("W/\"3\""));
    assert_eq!(req.operations[1].target(), ("/Users", Some("u1")));
    assert_eq!(req.operations[3].target(), ("/Users", Some("u2")));
    assert!(req.operations[3].data.is_none());
    assert_eq!(req.operations[4].bulk_id.as_deref(), Some("7"));
    assert_eq!(req.operations[2].references(), ["g1"]);
}

/// (body, max operations, status, scimType, text the detail must contain)
#[test]
fn parse_errors() {
    let post = json!({"method": "POST", "path": "/Users", "data": {}});
    let cases: Vec<(Value, usize, u16, Option<ScimType>, &str)> = vec![
        (
            json!([]),
            10,
            400,
            Some(ScimType::InvalidSyntax),
            "JSON object",
        ),
        (
            json!({}),
            10,
            400,
            Some(ScimType::InvalidSyntax),
            "Operations",
        ),
        (
            json!({"Operations": {}}),
            10,
            400,
            Some(ScimType::InvalidSyntax),
            "Operations",
        ),
        (
            json!({"Operations": [post.clone(), post.clone(), post.clone()]}),
            2,
            413,
            None,
            "maxOperations is 2",
        ),
        (
            json!({"Operations": [], "failOnErrors": 0}),
            10,
            400,
            Some(ScimType::InvalidValue),
            "failOnErrors",
        ),
        (
            json!({"Operations": [], "failOnErrors": "x"}),
            10,
            400,
            Some(ScimType::InvalidValue),
            "failOnErrors",
        ),
        (
            json!({"Operations": [post.clone(), 3]}),
            10,
            400,
            Some(ScimType::InvalidSyntax),
            "Operations[1]",
        ),
        (
            json!({"Operations": [{"path": "/Users", "data": {}}]}),
            10,
            400,
            Some(ScimType::InvalidSyntax),
            "Operations[0]: method",
        ),
        (
            json!({"Operations": [{"method": "GET", "path": "/Users"}]}),
            10,
            400,
            Some(ScimType::InvalidSyntax),
            "\"GET\"",
        ),
        (
            json!({"Operations": [{"method": "POST", "data": {}}]}),
            10,
            400,
            Some(ScimType::InvalidSyntax),
            "path",
        ),
        (
            json!({"Operations": [{"method": "POST", "path": "Users", "data": {}}]}),
            10,
            400,
            Some(ScimType::InvalidSyntax),
            "path must start",
        ),
        (
            json!({"Operations": [{"method": "PUT", "path": "/Users/1"}]}),
            10,
            400,
            Some(ScimType::InvalidSyntax),
            "data is required for PUT",
        ),
        (
            json!({"Operations": [{"method": "POST", "path": "/Users", "data": {}, "bulkId": []}]}),
            10,
            400,
            Some(ScimType::InvalidSyntax),
            "bulkId",
        ),
    ];
    for (body, max, status, scim_type, detail) in cases {
        let err = BulkRequest::parse(body.clone(), max).expect_err(&body.to_string());
        assert_eq!(err.status(), status, "{body}: {err}");
        assert_eq!(err.scim_type(), scim_type, "{body}: {err}");
        assert!(err.detail().contains(detail), "{body}: {}", err.detail());
    }
}

#[test]
fn payload_size_limit() {
    assert!(check_payload_size(1024, 1024).is_ok());
    let err = check_payload_size(1025, 1024).unwrap_err();
    assert_eq!(err.status(), 413);
    assert!(err.detail().contains("maxPayloadSize is 1024"));
}

/// (data, expected references)
#[test]
fn references_table() {
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}]}),
            vec!["u1", "u2"],
        ),
        (
            json!({"members": [{"value": "bulkId:u1"}, {"value": "bulkId:u1"}]}),
            vec!["u1"],
        ),
        (json!({"manager": {"value": "BULKID:m"}}), vec!["m"]),
        (json!({"$ref": "/Groups/bulkId:g1"}), vec!["g1"]),
        (
            json!({"path": "https://x/scim/v2/Users/bulkId:u9?attributes=id"}),
            vec!["u9"],
        ),
        (
            json!({"displayName": "notabulkId:x", "nick": "bulkId:"}),
            vec![],
        ),
        (json!(["a", 1, null, {"deep": [["bulkId:z"]]}]), vec!["z"]),
    ];
    for (data, want) in cases {
        assert_eq!(references(&data), want, "{data}");
    }
}

#[test]
fn resolves_references() {
    let ids: HashMap<String, String> = [("u1", "id-1"), ("g1", "id-g")]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let mut data = json!({"members": [{"value": "bulkId:u1"}, {"value": "plain"}], "x": "/Groups/bulkId:g1/more"});
    resolve_references(&mut data, &ids).unwrap();
    assert_eq!(
        data,
        json!({"members": [{"value": "id-1"}, {"value": "plain"}], "x": "/Groups/id-g/more"})
    );
    let mut op = op(
        BulkMethod::Patch,
        None,
        "/Groups/bulkId:g1",
        json!({"value": "bulkId:u1"}),
    );
    op.resolve(&ids).unwrap();
    assert_eq!(op.path, "/Groups/id-g");
    assert_eq!(op.data, Some(json!({"value": "id-1"})));

    let mut missing = json!({"value": "bulkId:nope"});
    let err = resolve_references(&mut missing, &ids).unwrap_err();
    assert_eq!(err.scim_type(), Some(ScimType::InvalidValue));
    assert!(err.detail().contains("\"nope\""), "{}", err.detail());
}

/// (operations as (bulkId, path, data), expected order or the bulkIds a cycle names)
#[test]
fn execution_order_table() {
    type Case = (
        Vec<(Option<&'static str>, &'static str, Value)>,
        std::result::Result<Vec<usize>, Vec<&'static str>>,
    );
    let cases: Vec<Case> = vec![
        (vec![], Ok(vec![])),
        (
            vec![
                (Some("a"), "/Users", json!({})),
                (Some("b"), "/Users", json!({})),
            ],
            Ok(vec![0, 1]),
        ),
        (
            // A group naming two users created after it.
            vec![
                (
                    Some("g"),
                    "/Groups",
                    json!({"members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}]}),
                ),
                (Some("u1"), "/Users", json!({})),
                (Some("u2"), "/Users", json!({})),
            ],
            Ok(vec![1, 2, 0]),
        ),
        (
            // A PATCH whose path names a group created later; independent operations keep
            // their request order.
            vec![
                (None, "/Groups/bulkId:g", json!({"Operations": []})),
                (Some("x"), "/Users", json!({})),
                (Some("g"), "/Groups", json!({})),
            ],
            Ok(vec![1, 2, 0]),
        ),
        (
            // Unknown references add no ordering.
            vec![(Some("a"), "/Users", json!({"manager": "bulkId:zzz"}))],
            Ok(vec![0]),
        ),
        (
            // Duplicate bulkId: the later definition is the one referenced.
            vec![
                (Some("d"), "/Users", json!({})),
                (None, "/Groups", json!({"members": [{"value": "bulkId:d"}]})),
                (Some("d"), "/Users", json!({})),
            ],
            Ok(vec![0, 2, 1]),
        ),
        (
            vec![
                (
                    Some("a"),
                    "/Groups",
                    json!({"members": [{"value": "bulkId:b"}]}),
                ),
                (
                    Some("b"),
                    "/Groups",
                    json!({"members": [{"value": "bulkId:a"}]}),
                ),
                (Some("c"), "/Users", json!({})),
            ],
            Err(vec!["a", "b"]),
        ),
        (
            vec![(Some("self"), "/Users", json!({"manager": "bulkId:self"}))],
            Err(vec!["self"]),
        ),
    ];
    for (ops, want) in cases {
        let ops: Vec<BulkOperation> = ops
            .into_iter()
            .map(|(id, path, data)| op(BulkMethod::Post, id, path, data))
            .collect();
        match (execution_order(&ops), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{ops:?}"),
            (Err(e), Err(ids)) => {
                assert_eq!(e.status(), 409, "{e}");
                for id in ids {
                    assert!(e.detail().contains(id), "{id}: {}", e.detail());
                }
                assert!(!e.detail().contains(" c"), "{}", e.detail());
            }
            (got, want) => panic!("{ops:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn response_wire_form_and_fail_on_errors() {
    let post = op(BulkMethod::Post, Some("u1"), "/Users", json!({}));
    let ok = BulkOperationResult::success(
        &post,
        201,
        Some("https://x/scim/v2/Users/1".into()),
        Some("W/\"1\"".into()),
    );
    let failed = BulkOperationResult::error(&post, &Error::uniqueness("userName \"a\" is taken"));
    let body = BulkResponse {
        operations: vec![ok.clone(), failed.clone()],
    }
    .to_json();
    assert_eq!(
        body,
        json!({
            "schemas": [BULK_RESPONSE_URN],
            "Operations": [
                {"method": "POST", "bulkId": "u1", "version": "W/\"1\"", "location": "https://x/scim/v2/Users/1", "status": "201"},
                {"method": "POST", "bulkId": "u1", "status": "409", "response": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "409",
                    "scimType": "uniqueness", "detail": "userName \"a\" is taken"}}
            ]
        })
    );

    let mut unlimited = FailureCounter::new(None);
    assert!(!unlimited.record(&failed) && !unlimited.record(&failed));
    assert_eq!(unlimited.failures(), 2);
    let mut two = FailureCounter::new(Some(2));
    assert!(!two.record(&failed));
    assert!(!two.record(&ok));
    assert!(two.record(&failed));
    assert!(two.should_stop());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Operations that only reference bulkIds of other operations without cycles (here:
        /// of operations later in the request) always get an order in which every operation
        /// runs after the ones it references, and independent ones keep request order.
        #[test]
        fn acyclic_references_are_ordered(refs in proptest::collection::vec(
            proptest::collection::vec(any::<prop::sample::Index>(), 0..3), 1..10)) {
            let n = refs.len();
            let deps: Vec<Vec<usize>> = refs.iter().enumerate().map(|(i, picks)| {
                let later = n - i - 1;
                let mut d: Vec<usize> = if later == 0 { vec![] } else {
                    picks.iter().map(|p| i + 1 + p.index(later)).collect()
                };
                d.sort_unstable();
                d.dedup();
                d
            }).collect();
            let ops: Vec<BulkOperation> = deps.iter().enumerate().map(|(i, d)| {
                let members: Vec<Value> = d.iter().map(|j| json!({"value": format!("bulkId:b{j}")})).collect();
                op(BulkMethod::Post, Some(&format!("b{i}")), "/Groups", json!({"members": members}))
            }).collect();
            let order = execution_order(&ops).unwrap();
            let mut position = vec![usize::MAX; n];
            for (pos, &i) in order.iter().enumerate() {
                position[i] = pos;
            }
            prop_assert!(position.iter().all(|&p| p < n), "a permutation");
            for (i, d) in deps.iter().enumerate() {
                for &j in d {
                    prop_assert!(position[j] < position[i], "{j} must run before {i}");
                }
            }
            if deps.iter().all(Vec::is_empty) {
                prop_assert_eq!(order, (0..n).collect::<Vec<_>>());
            }
        }

        /// Resolution replaces every reference it knows and leaves no `bulkId:` behind.
        #[test]
        fn resolution_leaves_no_reference(ids in proptest::collection::vec("[a-z0-9]{1,6}", 1..6)) {
            let map: HashMap<String, String> =
                ids.iter().map(|i| (i.clone(), format!("id-{i}"))).collect();
            let mut data = json!({
                "members": ids.iter().map(|i| json!({"value": format!("bulkId:{i}")})).collect::<Vec<_>>(),
                "path": format!("/Groups/bulkId:{}", ids[0]),
            });
            prop_assert_eq!(references(&data).len(), map.len());
            resolve_references(&mut data, &map).unwrap();
            prop_assert!(references(&data).is_empty());
            prop_assert_eq!(&data["path"], &json!(format!("/Groups/id-{}", ids[0])));
        }
    }
}
