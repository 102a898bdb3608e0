//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9; RFC 7643 §7 `returned`).

use serde_json::{Value, json};

use super::{Check, c};
use crate::ctx::{Ctx, ENTERPRISE, Stop, USER, absent, at, attr, id_of, resources};

const R: &str = "RFC 7644 §3.4.2.5";

fn rich_user(ctx: &mut Ctx) -> Result<(Value, String), Stop> {
    let u = ctx.create_user(
        "attrs",
        json!({"schemas": [USER, ENTERPRISE], "title": "Attr Title", "password": "Attr-Pa55word!", ENTERPRISE: {"department": "Attrs"}}),
    )?;
    let p = format!("/Users/{}", id_of(&u));
    Ok((u, p))
}

fn get_with(ctx: &mut Ctx, query: &str) -> Result<(Value, Value), Stop> {
    let (u, p) = rich_user(ctx)?;
    let v = ctx.fetch(&format!("{p}?{query}"))?;
    Ok((u, v))
}

pub(super) fn checks() -> Vec<Check> {
    vec![
        c(
            "attributes.get.only-requested",
            "attributes=userName returns userName and id only (plus always-returned)",
            R,
            |ctx| {
                let (_, v) = get_with(ctx, "attributes=userName")?;
                ctx.ensure(
                    attr(&v, "userName").is_string() && !id_of(&v).is_empty(),
                    "userName and id present",
                )?;
                ctx.ensure(
                    absent(attr(&v, "emails"))
                        && absent(attr(&v, "name"))
                        && absent(attr(&v, "title")),
                    "no emails, name or title",
                )
            },
        ),
        c(
            "attributes.get.id-always-returned",
            "id is returned even when not requested",
            "RFC 7643 §7 (returned always)",
            |ctx| {
                let (u, v) = get_with(ctx, "attributes=title")?;
                ctx.ensure(id_of(&v) == id_of(&u), "id present with attributes=title")
            },
        ),
        c(
            "attributes.get.sub-attribute",
            "attributes=name.givenName returns only that sub-attribute",
            R,
            |ctx| {
                let (_, v) = get_with(ctx, "attributes=name.givenName")?;
                ctx.ensure(
                    at(&v, "name.givenName") == "Conf" && absent(at(&v, "name.familyName")),
                    "name.givenName \"Conf\" and no name.familyName",
                )
            },
        ),
        c(
            "attributes.get.urn-qualified",
            "attributes accepts fully qualified names",
            "RFC 7644 §3.10",
            |ctx| {
                let (_, v) = get_with(
                    ctx,
                    &format!("attributes={}", Ctx::enc(&format!("{USER}:userName"))),
                )?;
                ctx.ensure(
                    attr(&v, "userName").is_string() && absent(attr(&v, "emails")),
                    "userName present, emails absent",
                )
            },
        ),
        c(
            "attributes.get.case-insensitive",
            "attributes names are case-insensitive",
            "RFC 7643 §2.1",
            |ctx| {
                let (_, v) = get_with(ctx, "attributes=USERNAME")?;
                ctx.ensure(
                    attr(&v, "userName").is_string() && absent(attr(&v, "emails")),
                    "userName present, emails absent",
                )
            },
        ),
        c(
            "attributes.get.multiple",
            "attributes with a comma-separated list",
            R,
            |ctx| {
                let (_, v) = get_with(ctx, "attributes=userName,emails")?;
                ctx.ensure(
                    attr(&v, "userName").is_string()
                        && attr(&v, "emails").is_array()
                        && absent(attr(&v, "name")),
                    "userName and emails present, name absent",
                )
            },
        ),
        c(
            "attributes.get.extension",
            "attributes naming an extension returns that extension",
            R,
            |ctx| {
                let (_, v) = get_with(ctx, &format!("attributes={}", Ctx::enc(ENTERPRISE)))?;
                ctx.ensure(
                    attr(&v, ENTERPRISE).is_object() && absent(attr(&v, "emails")),
                    format!("{ENTERPRISE} present, emails absent"),
                )
            },
        ),
        c(
            "attributes.get.password-never",
            "attributes=password still never returns the password",
            "RFC 7643 §7 (returned never)",
            |ctx| {
                let (_, v) = get_with(ctx, "attributes=password,userName")?;
                ctx.ensure(absent(attr(&v, "password")), "no password")
            },
        ),
        c(
            "attributes.excluded.get",
            "excludedAttributes=emails drops emails and keeps the rest",
            R,
            |ctx| {
                let (_, v) = get_with(ctx, "excludedAttributes=emails")?;
                ctx.ensure(
                    absent(attr(&v, "emails"))
                        && attr(&v, "userName").is_string()
                        && attr(&v, "title") == "Attr Title",
                    "no emails; userName and title present",
                )
            },
        ),
        c(
            "attributes.excluded.cannot-remove-always",
            "excludedAttributes cannot remove id",
            "RFC 7643 §7 (returned always)",
            |ctx| {
                let (u, v) = get_with(ctx, "excludedAttributes=id")?;
                ctx.ensure(id_of(&v) == id_of(&u), "id still present")
            },
        ),
        c(
            "attributes.excluded.sub-attribute",
            "excludedAttributes=name.familyName keeps name.givenName",
            R,
            |ctx| {
                let (_, v) = get_with(ctx, "excludedAttributes=name.familyName")?;
                ctx.ensure(
                    at(&v, "name.givenName") == "Conf" && absent(at(&v, "name.familyName")),
                    "name.givenName present, name.familyName absent",
                )
            },
        ),
        c(
            "attributes.excluded.extension",
            "excludedAttributes naming an extension drops it",
            R,
            |ctx| {
                let (_, v) =
                    get_with(ctx, &format!("excludedAttributes={}", Ctx::enc(ENTERPRISE)))?;
                ctx.ensure(
                    absent(attr(&v, ENTERPRISE)) && attr(&v, "userName").is_string(),
                    format!("no {ENTERPRISE}; userName present"),
                )
            },
        ),
        c(
            "attributes.list.only-requested",
            "attributes applies to each resource of a list",
            R,
            |ctx| {
                let (u, _) = rich_user(ctx)?;
                let name = attr(&u, "userName")
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let l = ctx.filter(
                    "/Users",
                    &format!("userName eq \"{name}\""),
                    "&attributes=userName",
                )?;
                let r = resources(&l).first().cloned().unwrap_or_default();
                ctx.ensure(
                    attr(&r, "userName").is_string()
                        && !id_of(&r).is_empty()
                        && absent(attr(&r, "emails")),
                    "Resources[0] with userName and id, without emails",
                )
            },
        ),
        c(
            "attributes.list.excluded",
            "excludedAttributes applies to each resource of a list",
            R,
            |ctx| {
                let (u, _) = rich_user(ctx)?;
                let name = attr(&u, "userName")
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let l = ctx.filter(
                    "/Users",
                    &format!("userName eq \"{name}\""),
                    "&excludedAttributes=emails,name",
                )?;
                let r = resources(&l).first().cloned().unwrap_or_default();
                ctx.ensure(
                    attr(&r, "userName").is_string()
                        && absent(attr(&r, "emails"))
                        && absent(attr(&r, "name")),
                    "Resources[0] without emails and name",
                )
            },
        ),
        c(
            "attributes.search-post",
            "attributes in a POST .search body",
            "RFC 7644 §3.4.3",
            |ctx| {
                let (u, _) = rich_user(ctx)?;
                let name = attr(&u, "userName")
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": format!("userName eq \"{name}\""), "attributes": ["userName"]});
                let r = ctx.post("/Users/.search", &body)?;
                ctx.status(&r, &[200], "")?;
                let l = ctx.obj(&r)?;
                let res = resources(&l).first().cloned().unwrap_or_default();
                ctx.ensure(
                    attr(&res, "userName").is_string() && absent(attr(&res, "emails")),
                    "Resources[0] with userName, without emails",
                )
            },
        ),
        c(
            "attributes.post.response",
            "attributes applies to the POST response",
            "RFC 7644 §3.9",
            |ctx| {
                let body = ctx.user_body("attrpost", json!({"title": "T"}));
                let r = ctx.post("/Users?attributes=userName", &body)?;
                if let Some(id) = r.j().get("id").and_then(Value::as_str) {
                    let p = format!("/Users/{id}");
                    ctx.track(p);
                }
                ctx.status(&r, &[201], "")?;
                ctx.ensure(
                    attr(r.j(), "userName").is_string()
                        && absent(attr(r.j(), "emails"))
                        && absent(attr(r.j(), "title")),
                    "response with userName and id only",
                )
            },
        ),
        c(
            "attributes.groups.excluded-members",
            "excludedAttributes=members on a group",
            R,
            |ctx| {
                let u = id_of(&ctx.create_user("attrgm", json!({}))?);
                let g = ctx.create_group("attrgm", &[&u])?;
                let v = ctx.fetch(&format!("/Groups/{}?excludedAttributes=members", id_of(&g)))?;
                ctx.ensure(
                    absent(attr(&v, "members")) && attr(&v, "displayName").is_string(),
                    "displayName present, members absent",
                )
            },
        ),
    ]
}
