//! The model end to end, as a server drives it: normalise, validate, store, render, project,
//! list, replace, describe the change, run a bulk request. Bodies are the ones Entra ID, Okta and
//! HR pushers send (reference §1.4, §3.1, §3.2).

use scim_core::bulk::{BulkMethod, BulkRequest, execution_order};
use scim_core::change::{Change, Operation};
use scim_core::etag::{check_if_match, if_none_match_hit};
use scim_core::normalize::request_body;
use scim_core::query::{ListQuery, QueryLimits, QueryParams};
use scim_core::resource::{Meta, Resource, User};
use scim_core::schema::{ENTERPRISE_USER_URN, SchemaRegistry};
use scim_core::validate;
use serde_json::{Value, json};
use time::OffsetDateTime;

const BASE: &str = "https://example.com/scim/v2";

/// What a server does with a POST body: normalise, validate, store as version 1.
fn create(
    registry: &SchemaRegistry,
    rt: &str,
    id: &str,
    body: Value,
) -> scim_core::Result<Resource> {
    let rt = registry.resource_type(rt).unwrap();
    let attrs = request_body(registry, rt, body)?;
    validate::create(registry, rt, &attrs)?;
    Ok(Resource::new(
        &rt.name,
        id,
        attrs,
        Meta::new(OffsetDateTime::UNIX_EPOCH),
    ))
}

#[test]
fn entra_legacy_create_renders_as_entra_expects() {
    let registry = SchemaRegistry::builtin();
    let user = create(
        &registry,
        "User",
        "u-joy",
        json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
               "externalId":"jyoung","userName":"jyoung@testuser.com","active":"True","addresses":null,"displayName":"Joy Young",
               "emails":[{"type":"work","value":"jyoung@Contoso.com","primary":"true"}],"meta":{"resourceType":"User"},
               "name":{"familyName":"Young","givenName":"Joy"},"phoneNumbers":null,"preferredLanguage":null,"title":null,
               "department":null,"manager":"u-boss"}),
    )
    .unwrap();
    let out = user.to_json(&registry, Some(BASE));
    assert_eq!(out["active"], true);
    assert_eq!(out["emails"][0]["primary"], true);
    assert_eq!(
        out[ENTERPRISE_USER_URN]["manager"],
        json!({"value": "u-boss"})
    );
    assert_eq!(
        out["schemas"],
        json!([
            "urn:ietf:params:scim:schemas:core:2.0:User",
            ENTERPRISE_USER_URN
        ])
    );
    for absent in [
        "addresses",
        "phoneNumbers",
        "title",
        "preferredLanguage",
        "department",
    ] {
        assert!(out.get(absent).is_none(), "{absent}");
    }
    assert_eq!(out["meta"]["location"], format!("{BASE}/Users/u-joy"));
}

#[test]
fn okta_put_of_the_full_object_keeps_password_and_active() {
    let registry = SchemaRegistry::builtin();
    let rt = registry.resource_type("User").unwrap();
    let stored = create(
        &registry,
        "User",
        "u1",
        json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"test.user@okta.local",
               "name":{"givenName":"Test","familyName":"User"},"emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}],
               "displayName":"Test User","locale":"en-US","externalId":"00ujl29u0le5T6Aj10h7","groups":[],"password":"1mz050nq","active":true}),
    )
    .unwrap();
    // Okta GETs the user, edits it and PUTs it back with id, groups and meta, without password.
    let mut body = stored.to_json(&registry, Some(BASE));
    body["displayName"] = json!("Test U.");
    body["groups"] = json!([{"value": "g1"}]);
    body.as_object_mut().unwrap().remove("active");
    assert!(check_if_match(body["meta"]["version"].as_str(), stored.meta.version).is_ok());
    let incoming = request_body(&registry, rt, body).unwrap();
    let attrs = validate::replace(&registry, rt, &stored, incoming).unwrap();
    assert_eq!(attrs["password"], "1mz050nq");
    assert_eq!(attrs["active"], true);
    assert!(
        attrs.get("groups").is_none() && attrs.get("id").is_none() && attrs.get("meta").is_none()
    );

    let mut after = Resource::new("User", "u1", attrs, stored.meta.clone());
    after.meta.version += 1;
    let change = Change::replaced(&registry, &stored, &after, None);
    assert_eq!(change.operation, Operation::Replace);
    assert_eq!(change.changed_paths, ["displayName"]);
    let logged = serde_json::to_string(&change).unwrap();
    assert!(
        !logged.contains("1mz050nq"),
        "a secret reached the change log"
    );
    // The old ETag no longer matches; a conditional GET with the new one is a 304.
    assert_eq!(
        check_if_match(Some("W/\"1\""), after.meta.version)
            .unwrap_err()
            .status(),
        412
    );
    assert!(if_none_match_hit(
        Some(&after.etag().to_string()),
        after.meta.version
    ));

    let typed = User::try_from(&after).unwrap();
    assert_eq!(typed.display_name.as_deref(), Some("Test U."));
}

#[test]
fn groups_listed_without_members_as_entra_reads_them() {
    let registry = SchemaRegistry::builtin();
    let rt = registry.resource_type("Group").unwrap();
    let groups: Vec<Value> = [("g1", "Sales"), ("g2", "Ops"), ("g3", "Admins")]
        .into_iter()
        .map(|(id, name)| {
            create(
                &registry,
                "Group",
                id,
                json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group",
                                  "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                       "displayName": name, "members": [{"value": "u1", "$ref": null}], "meta": {"resourceType": "Group"}}),
            )
            .unwrap()
            .to_json(&registry, Some(BASE))
        })
        .collect();
    let params = QueryParams {
        excluded_attributes: Some("members".into()),
        sort_by: Some("displayName".into()),
        start_index: Some("1".into()),
        count: Some("2".into()),
        ..QueryParams::default()
    };
    let query = ListQuery::from_params(&registry, rt, &params, QueryLimits::default()).unwrap();
    assert!(!query.projection.includes_members());
    let body = query.run(&registry, rt, groups).to_json();
    assert_eq!(body["totalResults"], 3);
    assert_eq!(body["itemsPerPage"], 2);
    let names: Vec<&str> = body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Admins", "Ops"]);
    assert!(body["Resources"][0].get("members").is_none());
    assert!(body["Resources"][0].get("meta").is_some());
}

#[test]
fn hr_bulk_push_parses_and_every_record_normalises() {
    let registry = SchemaRegistry::builtin();
    let record = |n: u32, manager: &str| {
        json!({"method":"POST","bulkId":"00aa00aa-bb11-cc22-dd33-44ee44ee44ee","path":"/Users","data":{
            "schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": n.to_string(), "userName": format!("{n}@example.com"), "active": true,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber": n, "costCenter":"4130",
                "department":"Tour Operations","manager":{"value": manager,"displayName":"John Smith"}}}})
    };
    let body = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                      "Operations":[record(701984, "89607"), record(701985, "701984")], "failOnErrors": null});
    let request = BulkRequest::parse(body.clone(), 50).unwrap();
    assert_eq!(execution_order(&request.operations).unwrap(), [0, 1]);
    for (i, op) in request.operations.iter().enumerate() {
        assert_eq!(op.method, BulkMethod::Post);
        let user = create(
            &registry,
            "User",
            &format!("u{i}"),
            op.data.clone().unwrap(),
        )
        .unwrap();
        let ext = &user.attributes[ENTERPRISE_USER_URN];
        assert!(
            ext["employeeNumber"].is_string(),
            "an HR number is stored as a string"
        );
        assert!(
            ext["manager"].get("displayName").is_none(),
            "manager.displayName is readOnly"
        );
    }
    // Above the operation limit the whole request is refused with 413.
    assert_eq!(BulkRequest::parse(body, 1).unwrap_err().status(), 413);
}

#[test]
fn garbage_from_microsofts_postman_collection() {
    let registry = SchemaRegistry::builtin();
    // "Post emp1 with string True" => 201 with active true.
    let user = create(
        &registry,
        "User",
        "e1",
        json!({"UserName": "emp1", "Active": "True"}),
    )
    .unwrap();
    assert_eq!(user.attributes["active"], true);
    // No userName => 400 naming it.
    let err = create(&registry, "User", "e2", json!({"active": true})).unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(err.detail().contains("userName"));
    // Junk JSON shape => 400 invalidSyntax.
    let err = create(&registry, "User", "e3", json!("junk")).unwrap_err();
    assert_eq!(err.scim_type(), Some(scim_core::ScimType::InvalidSyntax));
}
