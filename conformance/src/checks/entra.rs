//! The Microsoft Entra ID profile, users: what Entra provisioning sends, in the legacy and
//! the `aadOptscim062020` dialects (see `entra-okta.md` §1 and quirks Q1–Q20).
//! These checks are never skipped: they are what a real client does.

use serde_json::{Value, json};

use super::common::uname;
use super::{Check, c};
use crate::ctx::{
    Ctx, ENTERPRISE, ERROR, GROUP, LIST, Res, Stop, USER, absent, at, attr, id_of, ids, typed_value,
};

pub(super) const ADSCIM: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

/// The user payload of Entra's create (flag-era shape, S1 §1.4 A) with unique values.
pub(super) fn entra_user(ctx: &mut Ctx, label: &str) -> Value {
    let name = ctx.unique(label);
    json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": format!("{name}-ext"),
        "userName": format!("{name}@contoso.example"),
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": format!("{name}@contoso.example")}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": []
    })
}

/// Creates an Entra-shaped user; returns (resource, path).
pub(super) fn user(ctx: &mut Ctx, label: &str) -> Result<(Value, String), Stop> {
    let body = entra_user(ctx, label);
    let u = ctx.create_raw("/Users", &body)?;
    let p = format!("/Users/{}", id_of(&u));
    Ok((u, p))
}

/// Creates a group as Entra does (no members), with the core schema only so that a
/// server refusing Entra's extra ADSCIM schema URI fails `entra.group.create` alone and
/// the other group checks still test what they name; returns (resource, path).
pub(super) fn group(ctx: &mut Ctx, label: &str) -> Result<(Value, String), Stop> {
    let name = ctx.unique(label);
    let body = json!({"schemas": [GROUP], "externalId": format!("{name}-ext"), "displayName": name, "meta": {"resourceType": "Group"}});
    let g = ctx.create_raw("/Groups", &body)?;
    let p = format!("/Groups/{}", id_of(&g));
    Ok((g, p))
}

/// PATCHes `p` with `ops` (as Entra does), expects 200 or 204, returns the resource read back.
pub(super) fn patch_then_get(ctx: &mut Ctx, p: &str, ops: Value) -> Result<Value, Stop> {
    let r = ctx.patch(p, ops)?;
    ctx.status(&r, &[200, 204], "Entra accepts 200 or 204 for PATCH")?;
    ctx.fetch(p)
}

fn user_patch(ctx: &mut Ctx, ops: Value, what: &str, ok: impl Fn(&Value) -> bool) -> Res {
    let (_, p) = user(ctx, "epatch")?;
    let v = patch_then_get(ctx, &p, ops)?;
    if ok(&v) {
        Ok(())
    } else {
        Err(ctx.fail(format!("after the PATCH, GET shows {what}")))
    }
}

pub(super) fn manager_value(v: &Value) -> Value {
    attr(attr(v, ENTERPRISE), "manager").clone()
}

pub(super) fn checks() -> Vec<Check> {
    vec![
        c(
            "entra.connection.user-probe",
            "Test Connection: filter on a random GUID is 200 with an empty ListResponse",
            "Entra S1 Test Connection, Q11",
            |ctx| {
                let guid = uuid::Uuid::new_v4().to_string();
                let l = ctx.filter("/Users", &format!("userName eq \"{guid}\""), "")?;
                ctx.ensure(
                    l["totalResults"] == 0
                        && attr(&l, "schemas")
                            .as_array()
                            .is_some_and(|a| a.iter().any(|s| s == LIST)),
                    "200 ListResponse with totalResults 0",
                )
            },
        ),
        c(
            "entra.connection.group-probe",
            "Test Connection: group probe with excludedAttributes=members is 200",
            "Entra S1, I8 (404 on /Groups fails Test Connection)",
            |ctx| {
                let guid = uuid::Uuid::new_v4().to_string();
                let l = ctx.list(&format!(
                    "/Groups?excludedAttributes=members&filter={}",
                    Ctx::enc(&format!("displayName eq \"{guid}\""))
                ))?;
                ctx.ensure(l["totalResults"] == 0, "totalResults 0")
            },
        ),
        c(
            "entra.connection.no-user-agent",
            "A request without User-Agent is served",
            "Entra I7 (probe without User-Agent)",
            |ctx| {
                let r =
                    ctx.send_full("GET", "/Users?count=1", None, &[("user-agent", "")], None)?;
                ctx.status(&r, &[200], "")
            },
        ),
        c(
            "entra.discovery.schemas-list",
            "GET /Schemas is a ListResponse (schema discovery on save)",
            "Entra S1 §1.4 I",
            |ctx| {
                let l = ctx.list("/Schemas")?;
                ctx.ensure(
                    l["totalResults"].as_u64().unwrap_or(0) >= 2,
                    "at least the User and Group schemas",
                )
            },
        ),
        c(
            "entra.query.unknown-param-ignored",
            "The aadOptscim062020 query flag is ignored",
            "Entra Q20",
            |ctx| {
                let (u, _) = user(ctx, "eflag")?;
                let l = ctx.list(&format!(
                    "/Users?aadOptscim062020&filter={}",
                    Ctx::enc(&format!("userName eq \"{}\"", uname(&u)))
                ))?;
                ctx.ensure(
                    ids(&l) == vec![id_of(&u)],
                    "the user found despite the extra parameter",
                )
            },
        ),
        c(
            "entra.user.create",
            "Create with Entra's payload is 201 with id and meta timestamps",
            "Entra S1 §1.4 A",
            |ctx| {
                let (u, _) = user(ctx, "ecreate")?;
                let m = attr(&u, "meta");
                ctx.ensure(
                    attr(m, "created").is_string() && attr(m, "lastModified").is_string(),
                    "meta.created and meta.lastModified",
                )
            },
        ),
        c(
            "entra.user.create-legacy-nulls",
            "Legacy create with nulls and the malformed enterprise URN is accepted",
            "Entra S1 Example 2, Q14",
            |ctx| {
                let name = ctx.unique("elegacy");
                let body = json!({"schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
                "externalId": format!("{name}-ext"), "userName": format!("{name}@contoso.example"), "active": true, "addresses": null, "displayName": "Joy Young",
                "emails": [{"type": "work", "value": format!("{name}@Contoso.example"), "primary": true}], "meta": {"resourceType": "User"},
                "name": {"familyName": "Young", "givenName": "Joy"}, "phoneNumbers": null, "preferredLanguage": null, "title": null, "department": null, "manager": null});
                let u = ctx.create_raw("/Users", &body)?;
                ctx.ensure(at(&u, "name.givenName") == "Joy", "name.givenName \"Joy\"")
            },
        ),
        c(
            "entra.user.create-string-active",
            "\"active\":\"True\" in a POST is stored as boolean true",
            "Entra Q2, S9 (Post emp1 with string True)",
            |ctx| {
                let mut body = entra_user(ctx, "estrbool");
                body["active"] = json!("True");
                let u = ctx.create_raw("/Users", &body)?;
                let v = ctx.fetch(&format!("/Users/{}", id_of(&u)))?;
                ctx.ensure(
                    attr(&v, "active") == &json!(true),
                    "active true as a JSON boolean",
                )
            },
        ),
        c(
            "entra.user.create-capitalised-names",
            "Attribute names in any case (UserName, Active) are accepted and emitted in camelCase",
            "Entra Q15, S9",
            |ctx| {
                let name = ctx.unique("ecaps");
                let body = json!({"schemas": [USER], "UserName": format!("{name}@contoso.example"), "Active": true, "DisplayName": "Caps Test"});
                let u = ctx.create_raw("/Users", &body)?;
                let v = ctx.fetch(&format!("/Users/{}", id_of(&u)))?;
                ctx.ensure(
                    v.get("userName").is_some_and(|n| {
                        n.as_str().is_some_and(|s| {
                            s.eq_ignore_ascii_case(&format!("{name}@contoso.example"))
                        })
                    }),
                    "\"userName\" (canonical case) with the sent value",
                )
            },
        ),
        c(
            "entra.user.create-duplicate-409",
            "A duplicate userName is 409 with scimType uniqueness and detail",
            "Entra Q12, S9",
            |ctx| {
                let (u, _) = user(ctx, "edup")?;
                let mut body = entra_user(ctx, "edup2");
                body["userName"] = json!(uname(&u));
                let r = ctx.post("/Users", &body)?;
                if r.status < 300 {
                    let p = format!("/Users/{}", id_of(r.j()));
                    ctx.track(p);
                }
                ctx.status(&r, &[409], "")?;
                ctx.ensure(
                    attr(r.j(), "scimType") == "uniqueness" && attr(r.j(), "detail").is_string(),
                    "scimType \"uniqueness\" and a detail",
                )
            },
        ),
        c(
            "entra.user.match-username",
            "Matching by userName eq finds the user",
            "Entra S1 §1.2, Q10",
            |ctx| {
                let (u, _) = user(ctx, "ematch")?;
                let l = ctx.filter("/Users", &format!("userName eq \"{}\"", uname(&u)), "")?;
                ctx.ensure(ids(&l) == vec![id_of(&u)], "exactly the user")
            },
        ),
        c(
            "entra.user.match-externalid",
            "Matching by externalId eq finds the user",
            "Entra S1 §1.2",
            |ctx| {
                let (u, _) = user(ctx, "ematchext")?;
                let ext = attr(&u, "externalId")
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let l = ctx.filter("/Users", &format!("externalId eq \"{ext}\""), "")?;
                ctx.ensure(ids(&l) == vec![id_of(&u)], "exactly the user")
            },
        ),
        c(
            "entra.user.match-work-email",
            "Matching by emails[type eq \"work\"].value eq finds the user",
            "Entra S1 §1.2 (work email matching)",
            |ctx| {
                let (u, _) = user(ctx, "ematchmail")?;
                let mail = typed_value(&u, "emails", "work").unwrap_or_default();
                let l = ctx.filter(
                    "/Users",
                    &format!("emails[type eq \"work\"].value eq \"{mail}\""),
                    "",
                )?;
                ctx.ensure(ids(&l) == vec![id_of(&u)], "exactly the user")
            },
        ),
        c(
            "entra.user.match-plus-encoding",
            "A filter encoded with '+' for spaces is understood",
            "Entra Q10",
            |ctx| {
                let (u, _) = user(ctx, "eplus")?;
                let l = ctx.list(&format!(
                    "/Users?filter=userName+eq+%22{}%22",
                    Ctx::enc(&uname(&u))
                ))?;
                ctx.ensure(ids(&l) == vec![id_of(&u)], "exactly the user")
            },
        ),
        c(
            "entra.user.match-id-and-manager",
            "id eq ... and manager eq ... with attributes=id",
            "Entra S1 Example 4 (legacy manager check)",
            |ctx| {
                let (mgr, _) = user(ctx, "emgrm")?;
                let (u, p) = user(ctx, "emgru")?;
                patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": {"value": id_of(&mgr)}}]),
                )?;
                let f = format!("id eq \"{}\" and manager eq \"{}\"", id_of(&u), id_of(&mgr));
                let l = ctx.filter("/Users", &f, "&attributes=id")?;
                ctx.ensure(ids(&l) == vec![id_of(&u)], "exactly the user")
            },
        ),
        c(
            "entra.patch.op-capitalised",
            "PATCH op \"Replace\" (capitalised) is accepted",
            "Entra Q1",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "Replace", "path": "title", "value": "Capital"}]),
                    "title \"Capital\"",
                    |v| attr(v, "title") == "Capital",
                )
            },
        ),
        c(
            "entra.patch.multi-attribute",
            "Replace emails[type eq \"work\"].value and name.familyName in one request",
            "Entra S1 §1.4 D",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@contoso.example"}, {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}]),
                    "work email updatedEmail@contoso.example and familyName updatedFamilyName",
                    |v| {
                        typed_value(v, "emails", "work").as_deref()
                            == Some("updatedEmail@contoso.example")
                            && at(v, "name.familyName") == "updatedFamilyName"
                    },
                )
            },
        ),
        c(
            "entra.patch.replace-username",
            "Replace userName",
            "Entra S1 §1.4 D",
            |ctx| {
                let new = format!("{}@contoso.example", ctx.unique("erenamed"));
                let want = new.clone();
                user_patch(
                    ctx,
                    json!([{"op": "Replace", "path": "userName", "value": new}]),
                    &format!("userName {want}"),
                    move |v| attr(v, "userName") == want.as_str(),
                )
            },
        ),
        c(
            "entra.patch.active-string-false",
            "Legacy disable {\"op\":\"Replace\",\"path\":\"active\",\"value\":\"False\"}",
            "Entra Q2, S2",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "Replace", "path": "active", "value": "False"}]),
                    "active false (JSON boolean)",
                    |v| attr(v, "active") == &json!(false),
                )
            },
        ),
        c(
            "entra.patch.active-string-true",
            "Legacy enable with \"True\"",
            "Entra Q2, S2",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "Replace", "path": "active", "value": "False"}, {"op": "Replace", "path": "active", "value": "True"}]),
                    "active true (JSON boolean)",
                    |v| attr(v, "active") == &json!(true),
                )
            },
        ),
        c(
            "entra.patch.active-lowercase-string",
            "Disable with lowercase \"false\"",
            "Entra Q2, I2",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "replace", "path": "active", "value": "false"}]),
                    "active false (JSON boolean)",
                    |v| attr(v, "active") == &json!(false),
                )
            },
        ),
        c(
            "entra.patch.active-boolean",
            "Disable with a JSON boolean (flag dialect)",
            "Entra S1 §1.4 E",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "replace", "path": "active", "value": false}]),
                    "active false",
                    |v| attr(v, "active") == &json!(false),
                )
            },
        ),
        c(
            "entra.patch.add-active",
            "\"Add\" on active (deprovision) replaces it",
            "Entra Q3, I1",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "Add", "path": "active", "value": "False"}]),
                    "active false",
                    |v| attr(v, "active") == &json!(false),
                )
            },
        ),
        c(
            "entra.patch.add-existing-single-valued",
            "\"Add\" on a set single-valued attribute replaces it",
            "Entra Q3, S2",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "Add", "path": "nickName", "value": "Babs"}, {"op": "Add", "path": "nickName", "value": "Babs2"}]),
                    "nickName \"Babs2\"",
                    |v| attr(v, "nickName") == "Babs2",
                )
            },
        ),
        c(
            "entra.patch.no-path-dotted-keys",
            "No-path replace with dotted and URN keys updates those attributes",
            "Entra Q4, S2",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "replace", "value": {"displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua", format!("{ENTERPRISE}:employeeNumber"): "Aklq"}}]),
                    "displayName Bjfe, name.givenName Kkom, name.familyName Unua, enterprise employeeNumber Aklq (and no literal \"name.givenName\" key)",
                    |v| {
                        attr(v, "displayName") == "Bjfe"
                            && at(v, "name.givenName") == "Kkom"
                            && at(v, "name.familyName") == "Unua"
                            && attr(attr(v, ENTERPRISE), "employeeNumber") == "Aklq"
                            && v.get("name.givenName").is_none()
                    },
                )
            },
        ),
        c(
            "entra.patch.legacy-multi-op",
            "Legacy multi-op update incl. externalId and enterprise employeeNumber",
            "Entra Q4 (no flag), S2",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "Replace", "path": "externalId", "value": "ext-replaced"}, {"op": "Replace", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "E-9"}, {"op": "Replace", "path": "displayName", "value": "Multi"}]),
                    "externalId ext-replaced, employeeNumber E-9, displayName Multi",
                    |v| {
                        attr(v, "externalId") == "ext-replaced"
                            && attr(attr(v, ENTERPRISE), "employeeNumber") == "E-9"
                            && attr(v, "displayName") == "Multi"
                    },
                )
            },
        ),
        c(
            "entra.patch.value-path-creates-address",
            "Add addresses[type eq \"work\"].streetAddress creates the work address",
            "Entra Q5, I3",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"}]),
                    "an address with type work and streetAddress \"1 Main St\"",
                    |v| {
                        attr(v, "addresses").as_array().is_some_and(|a| {
                            a.iter().any(|x| {
                                attr(x, "type") == "work" && attr(x, "streetAddress") == "1 Main St"
                            })
                        })
                    },
                )
            },
        ),
        c(
            "entra.patch.value-path-creates-phone",
            "Replace phoneNumbers[type eq \"mobile\"].value creates the mobile number",
            "Entra Q5",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0101"}]),
                    "a mobile phone number \"+1 555 0101\"",
                    |v| typed_value(v, "phoneNumbers", "mobile").as_deref() == Some("+1 555 0101"),
                )
            },
        ),
        c(
            "entra.patch.manager-string",
            "Add manager as a string on the enterprise URN path; emitted as {\"value\":...}",
            "Entra Q8, I3 SCIM-SDK#686, I5",
            |ctx| {
                let (mgr, _) = user(ctx, "emgr")?;
                let mid = id_of(&mgr);
                let (_, p) = user(ctx, "emgrd")?;
                let v = patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": mid}]),
                )?;
                ctx.ensure(
                    attr(&manager_value(&v), "value") == mid.as_str(),
                    format!("manager as an object {{\"value\": \"{mid}\"}}"),
                )
            },
        ),
        c(
            "entra.patch.manager-legacy-array",
            "Add on unqualified manager with a legacy [{\"$ref\",\"value\"}] array",
            "Entra Q8, S1 Example 5",
            |ctx| {
                let (mgr, _) = user(ctx, "emgrl")?;
                let mid = id_of(&mgr);
                let (_, p) = user(ctx, "emgrld")?;
                let v = patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Add", "path": "manager", "value": [{"$ref": format!("{}/Users/{mid}", ctx.base()), "value": mid}]}]),
                )?;
                ctx.ensure(
                    attr(&manager_value(&v), "value") == mid.as_str(),
                    format!("enterprise manager.value \"{mid}\""),
                )
            },
        ),
        c(
            "entra.patch.manager-remove",
            "Remove the manager by its URN path",
            "Entra Q8, S10",
            |ctx| {
                let (mgr, _) = user(ctx, "emgrr")?;
                let (_, p) = user(ctx, "emgrrd")?;
                patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": {"value": id_of(&mgr)}}]),
                )?;
                let v = patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Remove", "path": format!("{ENTERPRISE}:manager")}]),
                )?;
                ctx.ensure(absent(&manager_value(&v)), "no manager")
            },
        ),
        c(
            "entra.patch.manager-replace-empty",
            "Replace the manager with \"\" removes it",
            "Entra Q8, S10 (remove = replace with empty)",
            |ctx| {
                let (mgr, _) = user(ctx, "emgre")?;
                let (_, p) = user(ctx, "emgred")?;
                patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": {"value": id_of(&mgr)}}]),
                )?;
                let v = patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": ""}]),
                )?;
                ctx.ensure(
                    absent(&manager_value(&v)) || absent(attr(&manager_value(&v), "value")),
                    "no manager",
                )
            },
        ),
        c(
            "entra.patch.replace-empty-clears",
            "Replace with \"\" clears an optional attribute",
            "Entra Q19, S10",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "Add", "path": "title", "value": "T"}, {"op": "Replace", "path": "title", "value": ""}]),
                    "no title",
                    |v| absent(attr(v, "title")),
                )
            },
        ),
        c(
            "entra.patch.replace-null-clears",
            "Replace with null clears an optional attribute",
            "Entra Q19, Q14",
            |ctx| {
                user_patch(
                    ctx,
                    json!([{"op": "Add", "path": "title", "value": "T"}, {"op": "Replace", "path": "title", "value": null}]),
                    "no title",
                    |v| absent(attr(v, "title")),
                )
            },
        ),
        c(
            "entra.patch.custom-extension",
            "A custom extension attribute path is accepted",
            "Entra Q13, S1",
            |ctx| {
                let (_, p) = user(ctx, "ecustom")?;
                let r = ctx.patch(&p, json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:tag", "value": "701984"}]))?;
                ctx.status(
                    &r,
                    &[200, 204],
                    "custom extension attributes are stored or ignored, never a 400",
                )
            },
        ),
        c(
            "entra.patch.roles-json-string",
            "Add roles whose value is a JSON-encoded string",
            "Entra Q16, I3",
            |ctx| {
                let (_, p) = user(ctx, "eroles")?;
                let r = ctx.patch(&p, json!([{"op": "Add", "path": "roles", "value": [{"value": "{\"id\":\"827f0d2e-be15-4d8f-a8e3-f8697239c112\",\"value\":\"DocumentMgmt-Admin\",\"displayName\":\"DocumentMgmt Admin\"}"}]}]))?;
                ctx.status(&r, &[200, 204], "")
            },
        ),
        c(
            "entra.user.soft-delete-readable",
            "A disabled user stays readable by id and by filter",
            "Entra Q18, S1, S3",
            |ctx| {
                let (u, p) = user(ctx, "esoft")?;
                patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Replace", "path": "active", "value": "False"}]),
                )?;
                let l = ctx.filter(
                    "/Users",
                    &format!("userName eq \"{}\" and active eq false", uname(&u)),
                    "",
                )?;
                ctx.ensure(
                    ids(&l) == vec![id_of(&u)],
                    "the disabled user found with active eq false",
                )
            },
        ),
        c(
            "entra.user.delete-204",
            "Hard delete is 204",
            "Entra S1 §1.4 G",
            |ctx| {
                let (_, p) = user(ctx, "edel")?;
                let r = ctx.delete(&p)?;
                ctx.status(&r, &[204], "")
            },
        ),
        c(
            "entra.user.unknown-404-body",
            "Unknown user is 404 with an Error body",
            "Entra S1 §1.4 B",
            |ctx| {
                let r = ctx.get("/Users/5d48a0a8e9f04aa38008-cf-unknown")?;
                ctx.status(&r, &[404], "")?;
                ctx.ensure(
                    attr(r.j(), "schemas")
                        .as_array()
                        .is_some_and(|a| a.iter().any(|s| s == ERROR))
                        && attr(r.j(), "status") == "404",
                    "Error schema and \"status\": \"404\"",
                )
            },
        ),
    ]
}
