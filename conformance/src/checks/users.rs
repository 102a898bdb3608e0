//! User CRUD (RFC 7644 §3.3–§3.6, RFC 7643 §3.1, §4.1).

use serde_json::{Value, json};

use super::Check;
use super::c;
use super::common::uname;
use crate::ctx::{Ctx, ENTERPRISE, LIST, Stop, USER, absent, at, attr, id_of};

fn created(ctx: &mut Ctx, label: &str) -> Result<(Value, String), Stop> {
    let u = ctx.create_user(label, json!({}))?;
    let id = id_of(&u);
    Ok((u, format!("/Users/{id}")))
}

pub(super) fn checks() -> Vec<Check> {
    vec![
        c(
            "users.create.status-201",
            "POST /Users answers 201 Created with the resource",
            "RFC 7644 §3.3",
            |ctx| {
                let body = ctx.user_body("create", json!({}));
                let r = ctx.post("/Users", &body)?;
                if let Some(id) = r.j().get("id").and_then(Value::as_str) {
                    let p = format!("/Users/{id}");
                    ctx.track(p);
                }
                ctx.status(&r, &[201], "")?;
                let v = ctx.obj(&r)?;
                ctx.ensure(
                    uname(&v) == uname(&body),
                    format!("userName {:?} echoed", uname(&body)),
                )
            },
        ),
        c(
            "users.create.location-header",
            "POST /Users sets Location to the new resource's URI",
            "RFC 7644 §3.3",
            |ctx| {
                let body = ctx.user_body("loc", json!({}));
                let r = ctx.post("/Users", &body)?;
                let id = r
                    .j()
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if !id.is_empty() {
                    ctx.track(format!("/Users/{id}"));
                }
                ctx.status(&r, &[201], "")?;
                let loc = r.header("location").unwrap_or_default().to_string();
                ctx.ensure(
                    !id.is_empty() && loc.ends_with(&format!("/Users/{id}")),
                    format!("Location header ending with /Users/{id}"),
                )
            },
        ),
        c(
            "users.create.server-assigned-id",
            "The server assigns id and ignores a client-sent id",
            "RFC 7643 §3.1",
            |ctx| {
                let u = ctx.create_user("clientid", json!({"id": "client-chosen-id-0001"}))?;
                ctx.ensure(
                    !id_of(&u).is_empty() && id_of(&u) != "client-chosen-id-0001",
                    "an id chosen by the server, not \"client-chosen-id-0001\"",
                )
            },
        ),
        c(
            "users.create.meta",
            "A created user carries meta.resourceType, created, lastModified and location",
            "RFC 7643 §3.1",
            |ctx| {
                let u = ctx.create_user("meta", json!({}))?;
                let m = attr(&u, "meta");
                ctx.ensure(
                    attr(m, "resourceType") == "User",
                    "meta.resourceType \"User\"",
                )?;
                ctx.ensure(
                    attr(m, "created").is_string() && attr(m, "lastModified").is_string(),
                    "meta.created and meta.lastModified",
                )?;
                let loc = attr(m, "location").as_str().unwrap_or_default();
                ctx.ensure(
                    loc.ends_with(&format!("/Users/{}", id_of(&u))),
                    "meta.location ending with /Users/<id>",
                )
            },
        ),
        c(
            "users.create.schemas",
            "A created user lists the core User schema",
            "RFC 7643 §3",
            |ctx| {
                let u = ctx.create_user("schemas", json!({}))?;
                let ok = attr(&u, "schemas")
                    .as_array()
                    .is_some_and(|a| a.iter().any(|s| s == USER));
                ctx.ensure(ok, format!("\"schemas\" containing {USER}"))
            },
        ),
        c(
            "users.create.password-never-returned",
            "password is accepted on create and never returned",
            "RFC 7643 §4.1.1",
            |ctx| {
                let u = ctx.create_user("pwd", json!({"password": "S3cret-Pa55word!"}))?;
                ctx.ensure(
                    absent(attr(&u, "password")),
                    "no password in the POST response",
                )?;
                let g = ctx.fetch(&format!("/Users/{}", id_of(&u)))?;
                ctx.ensure(
                    absent(attr(&g, "password")),
                    "no password in the GET response",
                )
            },
        ),
        c(
            "users.create.multi-valued-arrays",
            "Multi-valued attributes round-trip as arrays of objects",
            "RFC 7643 §2.4",
            |ctx| {
                let u = ctx.create_user(
                    "mv",
                    json!({"phoneNumbers": [{"value": "555-555-8377", "type": "work"}]}),
                )?;
                let g = ctx.fetch(&format!("/Users/{}", id_of(&u)))?;
                ctx.ensure(
                    attr(&g, "emails")
                        .as_array()
                        .is_some_and(|a| a.iter().all(Value::is_object)),
                    "emails as an array of objects",
                )?;
                ctx.ensure(
                    at(&g, "phoneNumbers")
                        .as_array()
                        .and_then(|a| a.first())
                        .map(|p| attr(p, "value") == "555-555-8377")
                        == Some(true),
                    "phoneNumbers[0].value \"555-555-8377\" stored verbatim",
                )
            },
        ),
        c(
            "users.create.enterprise-extension",
            "Enterprise extension attributes are stored under their URN",
            "RFC 7643 §4.3",
            |ctx| {
                let u = ctx.create_user("ent", json!({"schemas": [USER, ENTERPRISE], ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"}}))?;
                let g = ctx.fetch(&format!("/Users/{}", id_of(&u)))?;
                let e = attr(&g, ENTERPRISE);
                ctx.ensure(
                    attr(e, "employeeNumber") == "701984"
                        && attr(e, "department") == "Tour Operations",
                    format!(
                        "{ENTERPRISE}: employeeNumber \"701984\", department \"Tour Operations\""
                    ),
                )
            },
        ),
        c(
            "users.create.duplicate-409",
            "A second user with the same userName is 409 uniqueness",
            "RFC 7644 §3.3",
            |ctx| {
                let u = ctx.create_user("dup", json!({}))?;
                let body = json!({"schemas": [USER], "userName": uname(&u)});
                let r = ctx.post("/Users", &body)?;
                if r.status < 300 {
                    let p = format!("/Users/{}", id_of(r.j()));
                    ctx.track(p);
                }
                ctx.status(&r, &[409], "duplicate userName")?;
                ctx.ensure(
                    attr(r.j(), "scimType") == "uniqueness",
                    "scimType \"uniqueness\"",
                )
            },
        ),
        c(
            "users.create.duplicate-case-insensitive-409",
            "userName uniqueness ignores case",
            "RFC 7643 §4.1.1",
            |ctx| {
                let u = ctx.create_user("dupcase", json!({}))?;
                let body = json!({"schemas": [USER], "userName": uname(&u).to_uppercase()});
                let r = ctx.post("/Users", &body)?;
                if r.status < 300 {
                    let p = format!("/Users/{}", id_of(r.j()));
                    ctx.track(p);
                }
                ctx.status(
                    &r,
                    &[409],
                    "userName differing only in case (caseExact false)",
                )
            },
        ),
        c(
            "users.create.missing-username-400",
            "A user without userName is 400",
            "RFC 7643 §4.1.1, RFC 7644 §3.3",
            |ctx| {
                let r = ctx.post(
                    "/Users",
                    &json!({"schemas": [USER], "displayName": "no username"}),
                )?;
                if r.status < 300 {
                    let p = format!("/Users/{}", id_of(r.j()));
                    ctx.track(p);
                }
                ctx.status(&r, &[400], "required userName missing")
            },
        ),
        c(
            "users.get.by-id",
            "GET /Users/<id> returns the user as created",
            "RFC 7644 §3.4.1",
            |ctx| {
                let (u, p) = created(ctx, "get")?;
                let g = ctx.fetch(&p)?;
                ctx.ensure(
                    id_of(&g) == id_of(&u) && uname(&g) == uname(&u),
                    format!("id {} and userName {}", id_of(&u), uname(&u)),
                )?;
                ctx.ensure(
                    at(&g, "name.givenName") == "Conf",
                    "name.givenName \"Conf\"",
                )
            },
        ),
        c(
            "users.get.content-type",
            "Resources are served as application/scim+json",
            "RFC 7644 §3.1",
            |ctx| {
                let (_, p) = created(ctx, "ct")?;
                let r = ctx.get(&p)?;
                ctx.status(&r, &[200], "")?;
                ctx.ensure(
                    r.header("content-type")
                        .unwrap_or_default()
                        .to_ascii_lowercase()
                        .starts_with("application/scim+json"),
                    "Content-Type application/scim+json",
                )
            },
        ),
        c(
            "users.get.unknown-404",
            "GET /Users/<unknown id> is 404 with a SCIM error",
            "RFC 7644 §3.12",
            |ctx| {
                let r = ctx.get("/Users/cf-does-not-exist-0000")?;
                ctx.status(&r, &[404], "")?;
                ctx.ensure(
                    attr(r.j(), "status") == "404",
                    "an Error body with \"status\": \"404\"",
                )
            },
        ),
        c(
            "users.list.list-response",
            "GET /Users is a ListResponse with integer totalResults, startIndex, itemsPerPage",
            "RFC 7644 §3.4.2",
            |ctx| {
                created(ctx, "list")?;
                let l = ctx.list("/Users?count=5")?;
                ctx.ensure(
                    attr(&l, "schemas")
                        .as_array()
                        .is_some_and(|a| a.iter().any(|s| s == LIST)),
                    format!("schemas [{LIST}]"),
                )?;
                ctx.ensure(
                    l["startIndex"].is_u64() && l["itemsPerPage"].is_u64(),
                    "integer startIndex and itemsPerPage",
                )?;
                ctx.ensure(
                    l["totalResults"].as_u64().unwrap_or(0) >= 1,
                    "totalResults >= 1",
                )
            },
        ),
        c(
            "users.put.replace",
            "PUT replaces the attributes and returns the updated user",
            "RFC 7644 §3.5.1",
            |ctx| {
                let (u, p) = created(ctx, "put")?;
                let body = json!({"schemas": [USER], "userName": uname(&u), "name": {"givenName": "Replaced", "familyName": "Person"}, "title": "Put Title", "active": true});
                let r = ctx.put(&p, &body)?;
                ctx.status(&r, &[200], "")?;
                let v = ctx.obj(&r)?;
                ctx.ensure(
                    at(&v, "name.givenName") == "Replaced" && attr(&v, "title") == "Put Title",
                    "name.givenName \"Replaced\", title \"Put Title\" in the response",
                )?;
                let g = ctx.fetch(&p)?;
                ctx.ensure(
                    attr(&g, "title") == "Put Title",
                    "title \"Put Title\" on a later GET",
                )
            },
        ),
        c(
            "users.put.replaces-provided-values",
            "PUT replaces the values of a provided multi-valued attribute (no merge)",
            "RFC 7644 §3.5.1",
            |ctx| {
                let u = ctx.create_user(
                    "putmv",
                    json!({"emails": [{"type": "work", "value": "old-work@example.com"}, {"type": "home", "value": "old-home@example.com"}]}),
                )?;
                let p = format!("/Users/{}", id_of(&u));
                let body = json!({"schemas": [USER], "userName": uname(&u), "emails": [{"type": "work", "value": "new-work@example.com"}]});
                let r = ctx.put(&p, &body)?;
                ctx.status(&r, &[200], "")?;
                let g = ctx.fetch(&p)?;
                let emails = attr(&g, "emails").as_array().cloned().unwrap_or_default();
                ctx.ensure(
                    emails.len() == 1 && attr(&emails[0], "value") == "new-work@example.com",
                    "emails exactly [new-work@example.com] (provided values SHALL replace the existing ones)",
                )
            },
        ),
        c(
            "users.put.id-immutable",
            "PUT cannot change id",
            "RFC 7643 §3.1, RFC 7644 §3.5.1",
            |ctx| {
                let (u, p) = created(ctx, "putid")?;
                let r = ctx.put(
                    &p,
                    &json!({"schemas": [USER], "id": "cf-other-id", "userName": uname(&u)}),
                )?;
                ctx.ensure(
                    r.status == 400 || (r.status == 200 && id_of(r.j()) == id_of(&u)),
                    format!("400, or 200 keeping id {}", id_of(&u)),
                )
            },
        ),
        c(
            "users.put.unknown-404",
            "PUT to an unknown id is 404",
            "RFC 7644 §3.12",
            |ctx| {
                let name = ctx.unique("put404");
                let r = ctx.put(
                    "/Users/cf-does-not-exist-0000",
                    &json!({"schemas": [USER], "userName": name}),
                )?;
                ctx.status(&r, &[404], "")
            },
        ),
        c(
            "users.put.meta-lastmodified",
            "PUT advances meta.lastModified",
            "RFC 7643 §3.1",
            |ctx| {
                let (u, p) = created(ctx, "putlm")?;
                std::thread::sleep(std::time::Duration::from_millis(1100));
                let r = ctx.put(
                    &p,
                    &json!({"schemas": [USER], "userName": uname(&u), "title": "Later"}),
                )?;
                ctx.status(&r, &[200], "")?;
                let g = ctx.fetch(&p)?;
                let before = at(&u, "meta.lastModified")
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let after = at(&g, "meta.lastModified")
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                ctx.ensure(
                    !after.is_empty() && after != before,
                    format!("meta.lastModified different from {before}"),
                )
            },
        ),
        c(
            "users.delete.status-204",
            "DELETE /Users/<id> is 204 No Content",
            "RFC 7644 §3.6",
            |ctx| {
                let (_, p) = created(ctx, "del")?;
                let r = ctx.delete(&p)?;
                ctx.status(&r, &[204], "")
            },
        ),
        c(
            "users.delete.then-404",
            "A deleted user is 404 afterwards",
            "RFC 7644 §3.6",
            |ctx| {
                let (_, p) = created(ctx, "delget")?;
                let r = ctx.delete(&p)?;
                ctx.status(&r, &[204], "")?;
                let r = ctx.get(&p)?;
                ctx.status(&r, &[404], "GET after DELETE")
            },
        ),
        c(
            "users.delete.unknown-404",
            "DELETE of an unknown id is 404",
            "RFC 7644 §3.6",
            |ctx| {
                let r = ctx.delete("/Users/cf-does-not-exist-0000")?;
                ctx.status(&r, &[404], "")
            },
        ),
        c(
            "users.delete.removed-from-list",
            "A deleted user no longer matches a filter",
            "RFC 7644 §3.6",
            |ctx| {
                let (u, p) = created(ctx, "dellist")?;
                ctx.delete(&p)?;
                let l = ctx.filter("/Users", &format!("userName eq \"{}\"", uname(&u)), "")?;
                ctx.ensure(
                    l["totalResults"] == 0,
                    "totalResults 0 for the deleted userName",
                )
            },
        ),
    ]
}
