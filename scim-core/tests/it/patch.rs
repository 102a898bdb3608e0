//! PATCH engine: data-driven cases (resource, operations, expected resource or error), the
//! Entra and Okta dialects from the reference notes, membership deltas, and property tests.

use proptest::prelude::*;
use scim_core::ScimType;
use scim_core::patch::{
    self, Members, MembershipDelta, PatchOutcome, PatchPath, PatchRequest, needs_inline_members,
};
use scim_core::resource::{Meta, Resource};
use scim_core::schema::{ENTERPRISE_USER_URN, SchemaRegistry};
use serde_json::{Value, json};
use time::OffsetDateTime;

const ENT: &str = ENTERPRISE_USER_URN;
const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

fn resource(rt: &str, id: &str, attrs: Value) -> Resource {
    Resource::new(
        rt,
        id,
        attrs.as_object().expect("attributes object").clone(),
        Meta::new(OffsetDateTime::UNIX_EPOCH),
    )
}

fn user() -> Value {
    json!({
        "userName": "bjensen@example.com",
        "active": true,
        "nickName": "Babs",
        "title": "Tour Guide",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@home.example", "type": "home"}],
        ENT: {"employeeNumber": "701984", "manager": {"value": "m-1", "displayName": "John Smith"}}
    })
}

fn group() -> Value {
    json!({
        "displayName": "Sales",
        "members": [{"value": "u-1", "display": "Alice"}, {"value": "u-2"}]
    })
}

fn run(rt: &str, attrs: Value, ops: Value, members: Members) -> scim_core::Result<PatchOutcome> {
    let registry = SchemaRegistry::builtin();
    let resource_type = registry.resource_type(rt).unwrap();
    let id = if rt == "User" { "u-self" } else { "g-self" };
    let r = resource(rt, id, attrs);
    let before = r.clone();
    let request = PatchRequest::parse(
        json!({"schemas": [patch::PATCH_OP_URN], "Operations": ops}),
        100,
    )?;
    let out = patch::apply(&registry, resource_type, &r, &request, members);
    // Atomic by construction: the resource passed in is never changed, success or failure.
    assert_eq!(r, before);
    out
}

/// What a case expects.
enum Want {
    /// The attributes after the PATCH, and whether it changed anything.
    Attrs(Value, bool),
    /// An error with this scimType whose detail names the failing operation.
    Error(ScimType, usize),
}

fn check(name: &str, rt: &str, attrs: Value, ops: Value, want: Want) {
    let got = run(rt, attrs.clone(), ops, Members::Inline);
    match (want, got) {
        (Want::Attrs(expected, changed), Ok(out)) => {
            assert_eq!(
                Value::Object(out.attributes.clone()),
                expected,
                "{name}: attributes"
            );
            assert_eq!(
                out.changed, changed,
                "{name}: changed ({:?})",
                out.changed_paths
            );
            assert!(out.members.is_none(), "{name}");
            assert_no_dotted_keys(name, &Value::Object(out.attributes));
        }
        (Want::Error(scim_type, index), Err(e)) => {
            assert_eq!(e.scim_type(), Some(scim_type), "{name}: {e}");
            assert!(
                e.detail().contains(&format!("Operations[{index}]")),
                "{name}: detail {:?} names the operation",
                e.detail()
            );
        }
        (Want::Attrs(..), Err(e)) => panic!("{name}: unexpected error {e}"),
        (Want::Error(t, _), Ok(out)) => {
            panic!("{name}: expected {t}, got {:?}", out.attributes)
        }
    }
}

/// No attribute literally named `name.givenName` is ever stored.
fn assert_no_dotted_keys(name: &str, v: &Value) {
    if let Value::Object(obj) = v {
        for (k, v) in obj {
            if !k.starts_with("urn:") {
                assert!(!k.contains('.'), "{name}: dotted key {k:?} stored");
            }
            assert_no_dotted_keys(name, v);
        }
    }
}

fn with(base: Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    let mut v = base;
    f(v.as_object_mut().unwrap());
    v
}

#[test]
fn operation_names_are_case_insensitive_q1() {
    for op in ["Replace", "REPLACE", "replace", "rEpLaCe"] {
        check(
            op,
            "User",
            user(),
            json!([{"op": op, "path": "title", "value": "VP"}]),
            Want::Attrs(
                with(user(), |u| {
                    u.insert("title".into(), json!("VP"));
                }),
                true,
            ),
        );
    }
    check(
        "Remove",
        "User",
        user(),
        json!([{"op": "Remove", "path": "title"}]),
        Want::Attrs(
            with(user(), |u| {
                u.shift_remove("title");
            }),
            true,
        ),
    );
}

#[test]
fn string_booleans_q2() {
    let inactive = with(user(), |u| {
        u.insert("active".into(), json!(false));
    });
    for v in [json!("False"), json!("false"), json!("FALSE"), json!(false)] {
        check(
            &format!("replace active {v}"),
            "User",
            user(),
            json!([{"op": "Replace", "path": "active", "value": v}]),
            Want::Attrs(inactive.clone(), true),
        );
    }
    check(
        "path-less active",
        "User",
        user(),
        json!([{"op": "replace", "value": {"active": "False"}}]),
        Want::Attrs(inactive.clone(), true),
    );
    check(
        "True on an active user is a no-op",
        "User",
        user(),
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
        Want::Attrs(user(), false),
    );
    check(
        "not a boolean",
        "User",
        user(),
        json!([{"op": "replace", "path": "title", "value": "x"}, {"op": "Replace", "path": "active", "value": "yes"}]),
        Want::Error(ScimType::InvalidValue, 1),
    );
}

#[test]
fn add_on_a_set_single_valued_attribute_replaces_q3() {
    check(
        "add nickName",
        "User",
        user(),
        json!([{"op": "Add", "path": "nickName", "value": "Barb"}]),
        Want::Attrs(
            with(user(), |u| {
                u.insert("nickName".into(), json!("Barb"));
            }),
            true,
        ),
    );
    check(
        "add active on deprovision",
        "User",
        user(),
        json!([{"op": "Add", "path": "active", "value": "False"}]),
        Want::Attrs(
            with(user(), |u| {
                u.insert("active".into(), json!(false));
            }),
            true,
        ),
    );
}

#[test]
fn pathless_value_objects_q4() {
    let want = with(user(), |u| {
        u.insert("displayName".into(), json!("Bjfe"));
        u.insert(
            "name".into(),
            json!({"givenName": "Kkom", "familyName": "Unua"}),
        );
        u[ENT]["employeeNumber"] = json!("Aklq");
    });
    check(
        "dotted and URN keys (Entra with aadOptscim062020)",
        "User",
        user(),
        json!([{"op": "replace", "value": {
            "displayName": "Bjfe",
            "name.givenName": "Kkom",
            "name.familyName": "Unua",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
        }}]),
        Want::Attrs(want, true),
    );
    check(
        "nested object leaves other sub-attributes",
        "User",
        user(),
        json!([{"op": "replace", "value": {"name": {"givenName": "Babs"}}}]),
        Want::Attrs(
            with(user(), |u| {
                u["name"]["givenName"] = json!("Babs");
            }),
            true,
        ),
    );
    check(
        "whole extension object, any key case",
        "User",
        user(),
        json!([{"op": "add", "value": {
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"Department": "Tour Operations"}
        }}]),
        Want::Attrs(
            with(user(), |u| {
                u[ENT]["department"] = json!("Tour Operations");
            }),
            true,
        ),
    );
    check(
        "whole extension as a path",
        "User",
        user(),
        json!([{"op": "add", "path": ENT, "value": {"costCenter": "4130"}}]),
        Want::Attrs(
            with(user(), |u| {
                u[ENT]["costCenter"] = json!("4130");
            }),
            true,
        ),
    );
    check(
        "remove of the whole extension",
        "User",
        user(),
        json!([{"op": "remove", "path": ENT}]),
        Want::Attrs(
            with(user(), |u| {
                u.shift_remove(ENT);
            }),
            true,
        ),
    );
    check(
        "unqualified extension attribute in a path-less object",
        "User",
        user(),
        json!([{"op": "replace", "value": {"department": "Sales", "NICKNAME": "B"}}]),
        Want::Attrs(
            with(user(), |u| {
                u[ENT]["department"] = json!("Sales");
                u.insert("nickName".into(), json!("B"));
            }),
            true,
        ),
    );
    check(
        "core schema URN key",
        "User",
        user(),
        json!([{"op": "replace", "value": {"urn:ietf:params:scim:schemas:core:2.0:User": {"title": "VP"}}}]),
        Want::Attrs(
            with(user(), |u| {
                u.insert("title".into(), json!("VP"));
            }),
            true,
        ),
    );
}

#[test]
fn value_path_targets_q5() {
    let work = json!({"type": "work", "value": "updatedEmail@microsoft.com"});
    check(
        "S1 example D: creates the work email, sets familyName",
        "User",
        user(),
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
        ]),
        Want::Attrs(
            with(user(), |u| {
                u["emails"].as_array_mut().unwrap().push(work.clone());
                u["name"]["familyName"] = json!("updatedFamilyName");
            }),
            true,
        ),
    );
    let two = with(user(), |u| {
        u["emails"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "work", "value": "old@x"}));
    });
    check(
        "sets the sub-attribute of the matching element",
        "User",
        two.clone(),
        json!([{"op": "Add", "path": "emails[type eq \"WORK\"].value", "value": "new@x"}]),
        Want::Attrs(
            with(two.clone(), |u| {
                u["emails"][1]["value"] = json!("new@x");
            }),
            true,
        ),
    );
    check(
        "phone and address",
        "User",
        user(),
        json!([
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "555-555-5555"},
            {"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
            {"op": "replace", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"}
        ]),
        Want::Attrs(
            with(user(), |u| {
                u.insert(
                    "phoneNumbers".into(),
                    json!([{"type": "mobile", "value": "555-555-5555"}]),
                );
                u.insert(
                    "addresses".into(),
                    json!([{"type": "work", "streetAddress": "1 Main St", "locality": "Springfield"}]),
                );
            }),
            true,
        ),
    );
    check(
        "and of eqs creates both values",
        "User",
        user(),
        json!([{"op": "add", "path": "emails[type eq \"work\" and primary eq true].value", "value": "w@x"}]),
        Want::Attrs(
            with(user(), |u| {
                u["emails"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "work", "primary": true, "value": "w@x"}));
            }),
            true,
        ),
    );
    check(
        "no match and not an eq conjunction",
        "User",
        user(),
        json!([{"op": "add", "path": "emails[type ne \"home\"].value", "value": "w@x"}]),
        Want::Error(ScimType::NoTarget, 0),
    );
    check(
        "whole element replaced, keeps the selecting type",
        "User",
        two.clone(),
        json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "w2@x", "primary": true}}]),
        Want::Attrs(
            with(two.clone(), |u| {
                u["emails"][1] = json!({"type": "work", "value": "w2@x", "primary": true});
            }),
            true,
        ),
    );
    check(
        "clearing the value drops the element",
        "User",
        two.clone(),
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": ""}]),
        Want::Attrs(user(), true),
    );
    check(
        "remove by value path",
        "User",
        two.clone(),
        json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
        Want::Attrs(user(), true),
    );
    check(
        "remove with no match is a no-op",
        "User",
        user(),
        json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
        Want::Attrs(user(), false),
    );
    check(
        "filter on an undeclared sub-attribute matches nothing here",
        "User",
        user(),
        json!([{"op": "remove", "path": "emails[nope eq \"x\"]"}]),
        Want::Attrs(user(), false),
    );
    check(
        "filter on a simple attribute",
        "User",
        user(),
        json!([{"op": "remove", "path": "userName[value eq \"x\"]"}]),
        Want::Error(ScimType::InvalidPath, 0),
    );
}

#[test]
fn group_members_q6_q7() {
    check(
        "legacy remove with a value array removes only those",
        "Group",
        group(),
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "u-1"}]}]),
        Want::Attrs(
            json!({"displayName": "Sales", "members": [{"value": "u-2"}]}),
            true,
        ),
    );
    check(
        "remove one by filter",
        "Group",
        group(),
        json!([{"op": "remove", "path": "members[value eq \"u-2\"]"}]),
        Want::Attrs(
            json!({"displayName": "Sales", "members": [{"value": "u-1", "display": "Alice"}]}),
            true,
        ),
    );
    check(
        "member ids are caseExact",
        "Group",
        group(),
        json!([{"op": "remove", "path": "members[value eq \"U-2\"]"}]),
        Want::Attrs(group(), false),
    );
    check(
        "remove without value or filter clears",
        "Group",
        group(),
        json!([{"op": "remove", "path": "members"}]),
        Want::Attrs(json!({"displayName": "Sales"}), true),
    );
    check(
        "add with $ref null, several members, a duplicate and an existing one",
        "Group",
        group(),
        json!([{"op": "Add", "path": "members", "value": [
            {"$ref": null, "value": "u-3"},
            {"value": "u-3", "display": "Carol"},
            {"value": "u-1"}
        ]}]),
        Want::Attrs(
            json!({"displayName": "Sales", "members": [
                {"value": "u-1", "display": "Alice"}, {"value": "u-2"}, {"value": "u-3", "display": "Carol"}
            ]}),
            true,
        ),
    );
    check(
        "re-adding an existing member is a no-op success",
        "Group",
        group(),
        json!([{"op": "add", "path": "members", "value": [{"value": "u-2"}]}]),
        Want::Attrs(group(), false),
    );
    check(
        "add to an empty group (created without members)",
        "Group",
        json!({"displayName": "Sales"}),
        json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}]}]),
        Want::Attrs(
            json!({"displayName": "Sales", "members": [{"value": "f648f8d5ea4e4cd38e9c"}]}),
            true,
        ),
    );
    check(
        "member without an id",
        "Group",
        group(),
        json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]),
        Want::Error(ScimType::InvalidValue, 0),
    );
    check(
        "replace members is remove-all plus add",
        "Group",
        group(),
        json!([{"op": "replace", "path": "members", "value": [{"value": "u-9"}]}]),
        Want::Attrs(
            json!({"displayName": "Sales", "members": [{"value": "u-9"}]}),
            true,
        ),
    );
    check(
        "members.value is immutable on an existing element",
        "Group",
        group(),
        json!([{"op": "replace", "path": "members[value eq \"u-1\"].value", "value": "u-7"}]),
        Want::Error(ScimType::Mutability, 0),
    );
    check(
        "other multi-valued attributes do not duplicate either",
        "User",
        user(),
        json!([{"op": "add", "path": "emails", "value": [{"value": "BJENSEN@home.example", "type": "home"}]}]),
        Want::Attrs(user(), false),
    );
}

#[test]
fn manager_q8() {
    let no_manager = with(user(), |u| {
        u[ENT].as_object_mut().unwrap().shift_remove("manager");
    });
    let manager = |v: Value| {
        with(user(), |u| {
            u[ENT]["manager"] = v;
        })
    };
    check(
        "string value by URN path (a new manager drops the old displayName)",
        "User",
        user(),
        json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "2c2f6fb8"}]),
        Want::Attrs(manager(json!({"value": "2c2f6fb8"})), true),
    );
    check(
        "legacy array with unqualified path",
        "User",
        no_manager.clone(),
        json!([{"op": "Add", "path": "manager", "value": [{"$ref": "http://x/Users/00aa", "value": "00aa"}]}]),
        Want::Attrs(
            manager(json!({"$ref": "http://x/Users/00aa", "value": "00aa"})),
            true,
        ),
    );
    check(
        "object with capitalised sub-attribute",
        "User",
        user(),
        json!([{"op": "replace", "path": "manager", "value": {"Value": "m-2"}}]),
        Want::Attrs(manager(json!({"value": "m-2"})), true),
    );
    check(
        "same manager again keeps displayName and changes nothing",
        "User",
        user(),
        json!([{"op": "Add", "path": "manager", "value": "m-1"}]),
        Want::Attrs(user(), false),
    );
    for (name, op) in [
        (
            "remove by URN path",
            json!({"op": "Remove", "path": format!("{ENT}:manager")}),
        ),
        (
            "remove by filter",
            json!({"op": "remove", "path": "manager[value eq \"m-1\"]"}),
        ),
        (
            "replace with empty",
            json!({"op": "Replace", "path": "manager", "value": ""}),
        ),
        (
            "replace with null",
            json!({"op": "replace", "path": format!("{ENT}:manager"), "value": null}),
        ),
        (
            "replace value with empty",
            json!({"op": "replace", "path": "manager", "value": {"value": ""}}),
        ),
    ] {
        check(
            name,
            "User",
            user(),
            json!([op]),
            Want::Attrs(no_manager.clone(), true),
        );
    }
    check(
        "remove by a filter that does not match",
        "User",
        user(),
        json!([{"op": "remove", "path": "manager[value eq \"someone-else\"]"}]),
        Want::Attrs(user(), false),
    );
    check(
        "last extension attribute removed drops the extension",
        "User",
        json!({"userName": "a", ENT: {"manager": {"value": "m"}}}),
        json!([{"op": "remove", "path": "manager"}]),
        Want::Attrs(json!({"userName": "a"}), true),
    );
}

#[test]
fn undeclared_attributes_are_stored_as_sent_q13() {
    check(
        "custom extension attribute by path, with active in the same PATCH",
        "User",
        user(),
        json!([
            {"op": "Add", "path": format!("{CUSTOM}:tag"), "value": "701984"},
            {"op": "Replace", "path": "active", "value": "False"}
        ]),
        Want::Attrs(
            with(user(), |u| {
                u.insert(CUSTOM.into(), json!({"tag": "701984"}));
                u.insert("active".into(), json!(false));
            }),
            true,
        ),
    );
    check(
        "custom extension object in a path-less value",
        "User",
        user(),
        json!([{"op": "add", "value": {CUSTOM: {"tag": "x", "level": 3}}}]),
        Want::Attrs(
            with(user(), |u| {
                u.insert(CUSTOM.into(), json!({"tag": "x", "level": 3}));
            }),
            true,
        ),
    );
    check(
        "capitalised HR attributes inside a custom extension object (Entra inbound samples)",
        "User",
        with(user(), |u| {
            u.insert(CUSTOM.into(), json!({"HireDate": "01/02/2019", "tag": "t"}));
        }),
        json!([{"op": "replace", "value": {CUSTOM: {"HireDate": "07/23/2030", "IsContractor": "FALSE"}}}]),
        Want::Attrs(
            with(user(), |u| {
                u.insert(
                    CUSTOM.into(),
                    json!({"HireDate": "07/23/2030", "tag": "t", "IsContractor": "FALSE"}),
                );
            }),
            true,
        ),
    );
    check(
        "undeclared enterprise attribute",
        "User",
        user(),
        json!([{"op": "replace", "value": {format!("{ENT}:badge"): "B7"}}]),
        Want::Attrs(
            with(user(), |u| {
                u[ENT]["badge"] = json!("B7");
            }),
            true,
        ),
    );
    check(
        "undeclared sub-attribute of a declared attribute",
        "User",
        user(),
        json!([{"op": "add", "path": "name.nickname2", "value": "Bee"}]),
        Want::Attrs(
            with(user(), |u| {
                u["name"]["nickname2"] = json!("Bee");
            }),
            true,
        ),
    );
    check(
        "removing an absent custom attribute is a no-op",
        "User",
        user(),
        json!([{"op": "remove", "path": format!("{CUSTOM}:tag")}]),
        Want::Attrs(user(), false),
    );
    check(
        "a schema of another resource type",
        "User",
        user(),
        json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:displayName", "value": "x"}]),
        Want::Error(ScimType::InvalidPath, 0),
    );
}

#[test]
fn roles_json_encoded_q16() {
    check(
        "roles value unwrapped",
        "User",
        user(),
        json!([{"op": "Add", "path": "roles", "value": [
            {"value": "{\"id\":\"827f0d2e\",\"value\":\"DocumentMgmt-Admin\",\"displayName\":\"DocumentMgmt Admin\"}"}
        ]}]),
        Want::Attrs(
            with(user(), |u| {
                u.insert(
                    "roles".into(),
                    json!([{"id": "827f0d2e", "value": "DocumentMgmt-Admin", "displayName": "DocumentMgmt Admin"}]),
                );
            }),
            true,
        ),
    );
}

#[test]
fn empty_and_null_clear_q19() {
    let no_title = with(user(), |u| {
        u.shift_remove("title");
    });
    for v in [json!(""), json!(null)] {
        check(
            &format!("replace title {v}"),
            "User",
            user(),
            json!([{"op": "replace", "path": "title", "value": v}]),
            Want::Attrs(no_title.clone(), true),
        );
        check(
            &format!("path-less title {v}"),
            "User",
            user(),
            json!([{"op": "replace", "value": {"title": v}}]),
            Want::Attrs(no_title.clone(), true),
        );
        check(
            &format!("name.givenName {v}"),
            "User",
            user(),
            json!([{"op": "replace", "path": "name.givenName", "value": v}]),
            Want::Attrs(
                with(user(), |u| {
                    u["name"] = json!({"familyName": "Jensen"});
                }),
                true,
            ),
        );
        check(
            &format!("nested null {v}"),
            "User",
            user(),
            json!([{"op": "replace", "value": {"name": {"familyName": v}}}]),
            Want::Attrs(
                with(user(), |u| {
                    u["name"] = json!({"givenName": "Barbara"});
                }),
                true,
            ),
        );
        check(
            &format!("emails {v}"),
            "User",
            user(),
            json!([{"op": "replace", "path": "emails", "value": v}]),
            Want::Attrs(
                with(user(), |u| {
                    u.shift_remove("emails");
                }),
                true,
            ),
        );
    }
    check(
        "clearing an absent attribute is a no-op",
        "User",
        no_title.clone(),
        json!([{"op": "replace", "path": "title", "value": ""}]),
        Want::Attrs(no_title, false),
    );
}

#[test]
fn okta_dialect() {
    check(
        "deactivate",
        "User",
        user(),
        json!([{"op": "replace", "value": {"active": false}}]),
        Want::Attrs(
            with(user(), |u| {
                u.insert("active".into(), json!(false));
            }),
            true,
        ),
    );
    check(
        "password sync (writeOnly is accepted)",
        "User",
        user(),
        json!([{"op": "replace", "value": {"password": "1mz050nq"}}]),
        Want::Attrs(
            with(user(), |u| {
                u.insert("password".into(), json!("1mz050nq"));
            }),
            true,
        ),
    );
    check(
        "group rename with its own id, meta and schemas",
        "Group",
        group(),
        json!([{"op": "replace", "value": {
            "id": "g-self", "displayName": "Sales EMEA",
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "meta": {"resourceType": "Group"}
        }}]),
        Want::Attrs(
            with(group(), |g| {
                g.insert("displayName".into(), json!("Sales EMEA"));
            }),
            true,
        ),
    );
    check(
        "rename that changes nothing",
        "Group",
        group(),
        json!([{"op": "replace", "value": {"id": "g-self", "displayName": "Sales"}}]),
        Want::Attrs(group(), false),
    );
    check(
        "another id",
        "Group",
        group(),
        json!([{"op": "replace", "value": {"displayName": "x"}}, {"op": "replace", "value": {"id": "g-other", "displayName": "x"}}]),
        Want::Error(ScimType::Mutability, 1),
    );
    check(
        "membership push",
        "Group",
        group(),
        json!([
            {"op": "remove", "path": "members[value eq \"u-1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u-3", "display": "test.user@okta.local"}]}
        ]),
        Want::Attrs(
            json!({"displayName": "Sales", "members": [{"value": "u-2"}, {"value": "u-3", "display": "test.user@okta.local"}]}),
            true,
        ),
    );
    check(
        "readOnly groups in a path-less value is ignored",
        "User",
        user(),
        json!([{"op": "replace", "value": {"groups": [{"value": "g"}], "title": "VP"}}]),
        Want::Attrs(
            with(user(), |u| {
                u.insert("title".into(), json!("VP"));
            }),
            true,
        ),
    );
}

#[test]
fn errors() {
    let cases: Vec<(&str, Value, ScimType, usize)> = vec![
        (
            "path id",
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            ScimType::Mutability,
            0,
        ),
        (
            "meta sub",
            json!([{"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}]),
            ScimType::Mutability,
            0,
        ),
        (
            "groups",
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            ScimType::Mutability,
            0,
        ),
        (
            "schemas",
            json!([{"op": "replace", "path": "schemas", "value": []}]),
            ScimType::Mutability,
            0,
        ),
        (
            "remove without path",
            json!([{"op": "remove", "value": {"title": "x"}}]),
            ScimType::NoTarget,
            0,
        ),
        (
            "unparsable path",
            json!([{"op": "add", "path": "title", "value": "a"}, {"op": "add", "path": "emails[type eq", "value": "x"}]),
            ScimType::InvalidPath,
            1,
        ),
        (
            "sub of a simple attribute",
            json!([{"op": "add", "path": "userName.x", "value": "x"}]),
            ScimType::InvalidPath,
            0,
        ),
        (
            "unknown op",
            json!([{"op": "copy", "path": "title", "value": "x"}]),
            ScimType::InvalidSyntax,
            0,
        ),
        (
            "add without value",
            json!([{"op": "add", "path": "title"}]),
            ScimType::InvalidSyntax,
            0,
        ),
        (
            "path-less with a string",
            json!([{"op": "replace", "value": "x"}]),
            ScimType::InvalidSyntax,
            0,
        ),
        (
            "wrong type",
            json!([{"op": "replace", "path": "name", "value": 3}]),
            ScimType::InvalidValue,
            0,
        ),
        (
            "bad dateTime",
            json!([{"op": "add", "path": "title", "value": "x"}, {"op": "add", "path": "title", "value": "y"}, {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": "maybe"}]),
            ScimType::InvalidValue,
            2,
        ),
    ];
    for (name, ops, scim_type, index) in cases {
        check(name, "User", user(), ops, Want::Error(scim_type, index));
    }
}

#[test]
fn request_parsing() {
    let parse = |body: Value| PatchRequest::parse(body, 3);
    assert_eq!(
        parse(json!([])).unwrap_err().scim_type(),
        Some(ScimType::InvalidSyntax)
    );
    assert_eq!(
        parse(json!({})).unwrap_err().scim_type(),
        Some(ScimType::InvalidSyntax)
    );
    assert_eq!(
        parse(json!({"Operations": {"op": "add"}}))
            .unwrap_err()
            .scim_type(),
        Some(ScimType::InvalidSyntax)
    );
    assert_eq!(
        parse(json!({"Operations": [1]})).unwrap_err().scim_type(),
        Some(ScimType::InvalidSyntax)
    );
    let four = json!({"Operations": [{"op": "remove", "path": "a"}, {"op": "remove", "path": "a"}, {"op": "remove", "path": "a"}, {"op": "remove", "path": "a"}]});
    let err = parse(four).unwrap_err();
    assert_eq!(err.scim_type(), Some(ScimType::TooMany));
    assert_eq!(err.status(), 400);
    // Lenient: no schemas, any case for the Operations key and op.
    let req = parse(json!({"operations": [{"OP": "ADD", "Path": "title", "Value": "x"}]})).unwrap();
    assert_eq!(req.operations.len(), 1);
    assert_eq!(req.operations[0].op, patch::PatchOp::Add);
    assert_eq!(req.operations[0].to_string(), "add title");
}

#[test]
fn atomic_and_ordered() {
    // Op 3 fails: nothing of ops 0-2 survives, and the input is untouched (checked in `run`).
    let err = run(
        "User",
        user(),
        json!([
            {"op": "replace", "path": "title", "value": "VP"},
            {"op": "remove", "path": "emails"},
            {"op": "add", "path": "nickName", "value": "B"},
            {"op": "replace", "path": "id", "value": "other"}
        ]),
        Members::Inline,
    )
    .unwrap_err();
    assert_eq!(err.scim_type(), Some(ScimType::Mutability));
    assert!(
        err.detail().starts_with("Operations[3] (replace id)"),
        "{}",
        err.detail()
    );
    // In order: a later op sees the earlier one.
    check(
        "add then remove",
        "User",
        user(),
        json!([
            {"op": "add", "path": "emails[type eq \"work\"].value", "value": "w@x"},
            {"op": "remove", "path": "emails[type eq \"work\"]"}
        ]),
        Want::Attrs(user(), false),
    );
}

#[test]
fn changed_paths_name_top_level_attributes() {
    let out = run(
        "User",
        user(),
        json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "w@x"},
            {"op": "Add", "path": "manager", "value": "m-9"},
            {"op": "Replace", "path": "title", "value": "Tour Guide"},
            {"op": "Remove", "path": "nickName"}
        ]),
        Members::Inline,
    )
    .unwrap();
    assert_eq!(
        out.changed_paths,
        ["active", "emails", &format!("{ENT}:manager"), "nickName"]
    );
}

fn delta(ops: Value) -> scim_core::Result<(PatchOutcome, MembershipDelta)> {
    let attrs = json!({"displayName": "Sales"});
    let out = run("Group", attrs, ops, Members::Delta)?;
    let d = out.members.clone().unwrap_or_default();
    Ok((out, d))
}

#[test]
fn membership_deltas() {
    let d = |clear: bool, added: &[&str], removed: &[&str]| MembershipDelta {
        clear,
        added: added.iter().map(|s| s.to_string()).collect(),
        removed: removed.iter().map(|s| s.to_string()).collect(),
    };
    let cases: Vec<(&str, Value, MembershipDelta)> = vec![
        (
            "add",
            json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "a"}, {"value": "b"}, {"value": "a"}]}]),
            d(false, &["a", "b"], &[]),
        ),
        (
            "legacy remove",
            json!([{"op": "Remove", "path": "members", "value": [{"value": "a"}]}]),
            d(false, &[], &["a"]),
        ),
        (
            "remove by or-ed filter",
            json!([{"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"}]),
            d(false, &[], &["a", "b"]),
        ),
        (
            "replace",
            json!([{"op": "add", "path": "members", "value": [{"value": "z"}]}, {"op": "replace", "path": "members", "value": [{"value": "c"}]}]),
            d(true, &["c"], &[]),
        ),
        (
            "remove all",
            json!([{"op": "remove", "path": "members"}]),
            d(true, &[], &[]),
        ),
        (
            "add then remove nets out",
            json!([{"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]}, {"op": "remove", "path": "members[value eq \"a\"]"}]),
            d(false, &["b"], &["a"]),
        ),
        (
            "remove then add nets out",
            json!([{"op": "remove", "path": "members[value eq \"a\"]"}, {"op": "add", "path": "members", "value": [{"value": "a"}]}]),
            d(false, &["a"], &[]),
        ),
        (
            "path-less members with a rename",
            json!([{"op": "add", "value": {"displayName": "Sales", "members": [{"value": "a"}]}}]),
            d(false, &["a"], &[]),
        ),
    ];
    for (name, ops, want) in cases {
        let (out, got) = delta(ops).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
        assert!(out.changed, "{name}");
        assert!(out.changed_paths.contains(&"members".to_string()), "{name}");
        assert!(!out.attributes.contains_key("members"), "{name}");
    }
    let (out, _) =
        delta(json!([{"op": "replace", "path": "displayName", "value": "Sales"}])).unwrap();
    assert!(!out.changed);
    assert!(out.members.is_none());
    // A filter that needs the members loaded is refused in Delta mode (the server asks first).
    assert!(delta(json!([{"op": "remove", "path": "members[display eq \"x\"]"}])).is_err());
}

#[test]
fn needs_inline_members_table() {
    let cases = [
        (
            json!({"op": "add", "path": "members", "value": [{"value": "a"}]}),
            false,
        ),
        (json!({"op": "remove", "path": "members"}), false),
        (
            json!({"op": "remove", "path": "members[value eq \"a\"]"}),
            false,
        ),
        (
            json!({"op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members[value eq \"a\"]"}),
            false,
        ),
        (
            json!({"op": "replace", "path": "displayName", "value": "x"}),
            false,
        ),
        (
            json!({"op": "remove", "path": "members[value sw \"a\"]"}),
            true,
        ),
        (
            json!({"op": "remove", "path": "members[value eq \"a\" and type eq \"User\"]"}),
            true,
        ),
        (
            json!({"op": "add", "path": "members[value eq \"a\"].display", "value": "x"}),
            true,
        ),
        (
            json!({"op": "replace", "path": "members.display", "value": "x"}),
            true,
        ),
    ];
    for (op, want) in cases {
        let req = PatchRequest::parse(json!({"Operations": [op.clone()]}), 10).unwrap();
        assert_eq!(needs_inline_members(&req), want, "{op}");
    }
}

// ---- property tests ----

fn comparison() -> impl Strategy<Value = scim_v2::filter::ValFilter> {
    use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, ValFilter};
    let name = prop::sample::select(vec!["type", "value", "primary", "display"]);
    let op = prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ]);
    let value = prop_oneof![
        "[a-zA-Z0-9 @._-]{0,12}".prop_map(CompValue::Str),
        any::<i32>().prop_map(|n| CompValue::Number(n.into())),
        Just(CompValue::True),
        Just(CompValue::False),
        Just(CompValue::Null),
    ];
    prop_oneof![
        (name.clone(), op, value).prop_map(|(n, op, v)| ValFilter::Attr(AttrExp::Comparison(
            AttrPath::with_name(n),
            op,
            v
        ))),
        name.prop_map(|n| ValFilter::Attr(AttrExp::Present(AttrPath::with_name(n)))),
    ]
}

fn val_filter() -> impl Strategy<Value = scim_v2::filter::ValFilter> {
    use scim_v2::filter::{Operands, ValFilter};
    comparison().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|f| ValFilter::Not(Box::new(f))),
            // n-ary and/or whose operands are not of the same operator (the parser flattens).
            prop::collection::vec(inner.clone(), 2..4).prop_filter_map("flat and", |items| {
                (!items.iter().any(|f| matches!(f, ValFilter::And(_))))
                    .then(|| ValFilter::And(Operands::new(items).unwrap()))
            }),
            prop::collection::vec(inner, 2..4).prop_filter_map("flat or", |items| {
                (!items.iter().any(|f| matches!(f, ValFilter::Or(_))))
                    .then(|| ValFilter::Or(Operands::new(items).unwrap()))
            }),
        ]
    })
}

fn patch_path() -> impl Strategy<Value = PatchPath> {
    use scim_v2::filter::{AttrPath, PatchValuePath};
    let attr = prop_oneof![
        Just(AttrPath::with_name("userName")),
        Just(AttrPath::with_name("active")),
        Just(AttrPath::with_sub_attr("name", "givenName")),
        Just(AttrPath::with_name("emails")),
        Just(AttrPath::with_name("members")),
        Just(AttrPath {
            uri: Some(ENT.into()),
            name: "manager".into(),
            sub_attr: Some("value".into()),
        }),
        Just(AttrPath {
            uri: Some(ENT.into()),
            name: "employeeNumber".into(),
            sub_attr: None,
        }),
    ];
    let multi = prop::sample::select(vec!["emails", "phoneNumbers", "members", "addresses"]);
    let sub = prop::option::of(prop::sample::select(vec!["value", "type", "display"]));
    prop_oneof![
        attr.prop_map(PatchPath::Attr),
        (multi, val_filter(), sub).prop_map(|(m, filter, sub)| PatchPath::Value(PatchValuePath {
            attr: AttrPath::with_name(m),
            filter,
            sub_attr: sub.map(str::to_string),
        })),
    ]
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn patch_paths_round_trip(path in patch_path()) {
        let printed = path.to_string();
        let parsed = patch::parse_path(&printed).unwrap();
        prop_assert_eq!(parsed, path);
    }

    #[test]
    fn adding_twice_equals_adding_once(op in add_op()) {
        let once = run("User", user(), json!([op.clone()]), Members::Inline);
        let twice = run("User", user(), json!([op.clone(), op]), Members::Inline);
        match (once, twice) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a.attributes, b.attributes),
            (Err(a), Err(b)) => prop_assert_eq!(a.scim_type(), b.scim_type()),
            (a, b) => prop_assert!(false, "{:?} vs {:?}", a, b),
        }
    }

    #[test]
    fn add_then_remove_of_a_new_member_is_identity(
        existing in prop::collection::vec("[a-z]{1,4}", 0..6),
        new in "[A-Z]{1,4}",
        by_filter in any::<bool>(),
    ) {
        let members: Vec<Value> = existing.iter().map(|id| json!({"value": id})).collect();
        let mut attrs = json!({"displayName": "G"});
        if !members.is_empty() {
            attrs["members"] = Value::Array(members);
        }
        let remove = if by_filter {
            json!({"op": "remove", "path": format!("members[value eq \"{new}\"]")})
        } else {
            json!({"op": "remove", "path": "members", "value": [{"value": new}]})
        };
        let ops = json!([{"op": "add", "path": "members", "value": [{"value": new}]}, remove]);
        let out = run("Group", attrs.clone(), ops, Members::Inline).unwrap();
        prop_assert_eq!(Value::Object(out.attributes), attrs);
        prop_assert!(!out.changed);
    }
}

fn add_op() -> impl Strategy<Value = Value> {
    let word = "[a-z]{1,5}";
    prop_oneof![
        word.prop_map(|w| json!({"op": "add", "path": "nickName", "value": w})),
        word.prop_map(|w| json!({"op": "add", "path": "name.givenName", "value": w})),
        (word, prop::sample::select(vec!["work", "home", "other"]))
            .prop_map(|(w, t)| json!({"op": "add", "path": "emails", "value": [{"value": format!("{w}@x"), "type": t}]})),
        (word, prop::sample::select(vec!["work", "mobile"]))
            .prop_map(|(w, t)| json!({"op": "add", "path": format!("phoneNumbers[type eq \"{t}\"].value"), "value": w})),
        word.prop_map(|w| json!({"op": "add", "path": "manager", "value": w})),
        (word, word).prop_map(|(a, b)| json!({"op": "add", "value": {"title": a, "name.familyName": b}})),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        Just(json!("")),
        Just(json!("x")),
        Just(json!("True")),
        Just(json!("u-1")),
        Just(json!(true)),
        Just(json!(7)),
        Just(json!("2024-05-01T12:00:00Z")),
    ];
    let key = prop::sample::select(vec![
        "value",
        "type",
        "primary",
        "display",
        "$ref",
        "givenName",
        "name.givenName",
        "active",
        "title",
        "id",
        "meta",
        "schemas",
        "members",
        "emails",
        "manager",
        "department",
        ENT,
        CUSTOM,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "groups",
        "Weird Key",
    ]);
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..4).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

fn operation() -> impl Strategy<Value = Value> {
    let op = prop::sample::select(vec![
        "add", "Add", "replace", "Replace", "remove", "REMOVE", "copy",
    ]);
    let path = prop::option::of(prop::sample::select(vec![
        "title",
        "active",
        "name",
        "name.givenName",
        "name.nope",
        "emails",
        "emails.value",
        "emails[type eq \"work\"]",
        "emails[type eq \"work\"].value",
        "emails[type eq \"home\"].primary",
        "emails[value co \"@\"]",
        "phoneNumbers[type eq \"mobile\"].value",
        "addresses[type eq \"work\"].streetAddress",
        "members",
        "members[value eq \"u-1\"]",
        "members[value eq \"u-1\" or value eq \"u-9\"]",
        "members[display pr]",
        "members[value eq \"u-1\"].value",
        "manager",
        "manager.value",
        "manager[value eq \"m1\"]",
        ENT,
        CUSTOM,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "id",
        "meta",
        "groups",
        "schemas",
        "displayName",
        "userName.x",
        "unknownThing",
        "roles",
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group:members",
    ]));
    (op, path, prop::option::of(json_value())).prop_map(|(op, path, value)| {
        let mut o = json!({"op": op});
        if let Some(p) = path {
            o["path"] = json!(p);
        }
        if let Some(v) = value {
            o["value"] = v;
        }
        o
    })
}

fn patch_error(e: &scim_core::Error) -> bool {
    e.status() == 400
        && matches!(
            e.scim_type(),
            Some(
                ScimType::InvalidPath
                    | ScimType::NoTarget
                    | ScimType::Mutability
                    | ScimType::InvalidValue
                    | ScimType::InvalidSyntax
                    | ScimType::TooMany
            )
        )
}

proptest! {
    #![proptest_config(config())]

    /// The same properties as the `patch_body` fuzz target, over plausible operations.
    #[test]
    fn plausible_requests_never_panic(ops in prop::collection::vec(operation(), 1..5)) {
        for (rt, attrs) in [("User", with(user(), |u| { u.insert("roles".into(), json!([{"value": "r"}])); })), ("Group", group())] {
            let inline = run(rt, attrs.clone(), json!(ops.clone()), Members::Inline);
            match &inline {
                Ok(out) => {
                    prop_assert_eq!(out.changed, Value::Object(out.attributes.clone()) != attrs);
                    prop_assert_eq!(out.changed, !out.changed_paths.is_empty());
                }
                Err(e) => prop_assert!(patch_error(e), "{}", e),
            }
            let delta = run(rt, attrs.clone(), json!(ops.clone()), Members::Delta);
            if let Err(e) = &delta {
                prop_assert!(patch_error(e), "{}", e);
                if inline.is_ok() {
                    let req = PatchRequest::parse(json!({"Operations": ops.clone()}), 100).unwrap();
                    prop_assert!(needs_inline_members(&req), "{}", e);
                }
            }
        }
    }
}

#[test]
fn replacing_a_member_element_keeps_its_immutable_type() {
    check(
        "replace by filter",
        "Group",
        json!({"displayName": "G", "members": [{"value": "u-1", "type": "User"}]}),
        json!([{"op": "replace", "path": "members[value eq \"u-1\"]", "value": {"value": "u-1", "display": "Al"}}]),
        Want::Attrs(
            json!({"displayName": "G", "members": [{"value": "u-1", "display": "Al", "type": "User"}]}),
            true,
        ),
    );
}

#[test]
fn more_dialect_shapes() {
    check(
        "Q4 without the flag: one op per attribute",
        "User",
        user(),
        json!([
            {"op": "Replace", "path": "externalId", "value": "jyoung"},
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "Aklq"},
            {"op": "Add", "path": "name.formatted", "value": "Barbara Jensen"}
        ]),
        Want::Attrs(
            with(user(), |u| {
                u.insert("externalId".into(), json!("jyoung"));
                u[ENT]["employeeNumber"] = json!("Aklq");
                u["name"]["formatted"] = json!("Barbara Jensen");
            }),
            true,
        ),
    );
    check(
        "a custom extension object as a path",
        "User",
        user(),
        json!([{"op": "add", "path": CUSTOM, "value": {"tag": "t"}}]),
        Want::Attrs(
            with(user(), |u| {
                u.insert(CUSTOM.into(), json!({"tag": "t"}));
            }),
            true,
        ),
    );
    check(
        "Q7: several member ops in one request",
        "Group",
        json!({"displayName": "G"}),
        json!([
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "a"}]},
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "b"}, {"value": "a"}]}
        ]),
        Want::Attrs(
            json!({"displayName": "G", "members": [{"value": "a"}, {"value": "b"}]}),
            true,
        ),
    );
    check(
        "remove members with an empty array removes nobody",
        "Group",
        group(),
        json!([{"op": "Remove", "path": "members", "value": []}]),
        Want::Attrs(group(), false),
    );
    check(
        "a new primary email demotes the old one",
        "User",
        with(user(), |u| {
            u["emails"][0]["primary"] = json!(true);
        }),
        json!([{"op": "add", "path": "emails", "value": [{"value": "w@x", "type": "work", "primary": "True"}]}]),
        Want::Attrs(
            with(user(), |u| {
                u["emails"] = json!([
                    {"value": "bjensen@home.example", "type": "home", "primary": false},
                    {"value": "w@x", "type": "work", "primary": true}
                ]);
            }),
            true,
        ),
    );
}

#[test]
fn large_inline_member_lists_stay_linear() {
    // 20,000 members replaced, then half removed with the legacy value array: quadratic
    // identity checks would take minutes here.
    let members: Vec<Value> = (0..20_000)
        .map(|i| json!({"value": format!("u-{i}")}))
        .collect();
    let removed: Vec<Value> = (0..10_000)
        .map(|i| json!({"value": format!("u-{}", i * 2)}))
        .collect();
    let out = run(
        "Group",
        json!({"displayName": "Big"}),
        json!([
            {"op": "replace", "path": "members", "value": members},
            {"op": "add", "path": "members", "value": members},
            {"op": "remove", "path": "members", "value": removed}
        ]),
        Members::Inline,
    )
    .unwrap();
    let left = out.attributes["members"].as_array().unwrap();
    assert_eq!(left.len(), 10_000);
    assert_eq!(left[0], json!({"value": "u-1"}));
}
