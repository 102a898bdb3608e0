//! Group CRUD (RFC 7644 §3.3–§3.6, RFC 7643 §4.2).

use serde_json::{Value, json};

use super::{Check, c};
use crate::ctx::{Ctx, GROUP, Stop, attr, id_of, values_of};

fn user(ctx: &mut Ctx, label: &str) -> Result<String, Stop> {
    Ok(id_of(&ctx.create_user(label, json!({}))?))
}

fn dn(v: &Value) -> String {
    attr(v, "displayName")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub(super) fn checks() -> Vec<Check> {
    vec![
        c(
            "groups.create.status-201",
            "POST /Groups answers 201 with the group",
            "RFC 7644 §3.3",
            |ctx| {
                let name = ctx.unique("grp");
                let r = ctx.post("/Groups", &json!({"schemas": [GROUP], "displayName": name}))?;
                if let Some(id) = r.j().get("id").and_then(Value::as_str) {
                    let p = format!("/Groups/{id}");
                    ctx.track(p);
                }
                ctx.status(&r, &[201], "")?;
                let v = ctx.obj(&r)?;
                ctx.ensure(
                    dn(&v) == name && !id_of(&v).is_empty(),
                    format!("id and displayName {name:?}"),
                )
            },
        ),
        c(
            "groups.create.meta",
            "A created group carries meta.resourceType \"Group\" and its location",
            "RFC 7643 §3.1",
            |ctx| {
                let g = ctx.create_group("gmeta", &[])?;
                let m = attr(&g, "meta");
                ctx.ensure(
                    attr(m, "resourceType") == "Group",
                    "meta.resourceType \"Group\"",
                )?;
                ctx.ensure(
                    attr(m, "location")
                        .as_str()
                        .unwrap_or_default()
                        .ends_with(&format!("/Groups/{}", id_of(&g))),
                    "meta.location ending with /Groups/<id>",
                )
            },
        ),
        c(
            "groups.create.with-members",
            "A group created with members lists them",
            "RFC 7643 §4.2",
            |ctx| {
                let u1 = user(ctx, "gm1")?;
                let u2 = user(ctx, "gm2")?;
                let g = ctx.create_group("gmem", &[&u1, &u2])?;
                let got = ctx.fetch(&format!("/Groups/{}", id_of(&g)))?;
                let mut m = values_of(&got, "members");
                m.sort();
                let mut want = vec![u1, u2];
                want.sort();
                ctx.ensure(m == want, format!("members {want:?}"))
            },
        ),
        c(
            "groups.members.shape",
            "Members carry value, and a $ref and type pointing at the user when present",
            "RFC 7643 §4.2",
            |ctx| {
                let u = user(ctx, "gshape")?;
                let g = ctx.create_group("gshape", &[&u])?;
                let got = ctx.fetch(&format!("/Groups/{}", id_of(&g)))?;
                let m = attr(&got, "members")
                    .as_array()
                    .and_then(|a| a.first())
                    .cloned()
                    .unwrap_or(Value::Null);
                ctx.ensure(
                    attr(&m, "value") == u.as_str(),
                    format!("members[0].value {u:?}"),
                )?;
                let r = attr(&m, "$ref");
                ctx.ensure(
                    r.is_null()
                        || r.as_str()
                            .is_some_and(|s| s.ends_with(&format!("/Users/{u}"))),
                    "members[0].$ref absent or ending with /Users/<id>",
                )?;
                let t = attr(&m, "type");
                ctx.ensure(
                    t.is_null() || t == "User",
                    "members[0].type absent or \"User\"",
                )
            },
        ),
        c(
            "groups.members.ref",
            "Members and a user's groups carry $ref: the absolute URI of the resource, which answers GET",
            "RFC 7643 §4.2, §4.1.2",
            |ctx| {
                let u = user(ctx, "gref")?;
                let g = ctx.create_group("gref", &[&u])?;
                let gid = id_of(&g);
                let got = ctx.fetch(&format!("/Groups/{gid}"))?;
                let member_ref = attr(&got, "members")
                    .as_array()
                    .and_then(|a| a.first())
                    .map(|m| attr(m, "$ref").as_str().unwrap_or_default().to_string())
                    .unwrap_or_default();
                let absolute = |r: &str| {
                    url::Url::parse(r).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                };
                ctx.ensure(
                    absolute(&member_ref) && member_ref.ends_with(&format!("/Users/{u}")),
                    format!("members[0].$ref an absolute URI ending with /Users/{u}"),
                )?;
                let target = ctx.fetch(&member_ref)?;
                ctx.ensure(
                    id_of(&target) == u,
                    format!("GET members[0].$ref returns user {u}"),
                )?;
                let user = ctx.fetch(&format!("/Users/{u}"))?;
                let group_ref = attr(&user, "groups")
                    .as_array()
                    .and_then(|a| a.iter().find(|g| attr(g, "value") == gid.as_str()))
                    .map(|g| attr(g, "$ref").as_str().unwrap_or_default().to_string())
                    .unwrap_or_default();
                ctx.ensure(
                    absolute(&group_ref) && group_ref.ends_with(&format!("/Groups/{gid}")),
                    format!("the user's groups[].$ref an absolute URI ending with /Groups/{gid}"),
                )
            },
        ),
        c(
            "groups.create.nested-group-member",
            "A group can have a group as member",
            "RFC 7643 §4.2",
            |ctx| {
                let inner = ctx.create_group("ginner", &[])?;
                let name = ctx.unique("gouter");
                let body = json!({"schemas": [GROUP], "displayName": name, "members": [{"value": id_of(&inner), "type": "Group"}]});
                let outer = ctx.create_raw("/Groups", &body)?;
                let got = ctx.fetch(&format!("/Groups/{}", id_of(&outer)))?;
                ctx.ensure(
                    values_of(&got, "members") == vec![id_of(&inner)],
                    format!("members [{}]", id_of(&inner)),
                )
            },
        ),
        c(
            "groups.get.by-id",
            "GET /Groups/<id> returns the group",
            "RFC 7644 §3.4.1",
            |ctx| {
                let g = ctx.create_group("gget", &[])?;
                let got = ctx.fetch(&format!("/Groups/{}", id_of(&g)))?;
                ctx.ensure(
                    id_of(&got) == id_of(&g) && dn(&got) == dn(&g),
                    format!("id {} displayName {}", id_of(&g), dn(&g)),
                )
            },
        ),
        c(
            "groups.get.unknown-404",
            "GET /Groups/<unknown id> is 404",
            "RFC 7644 §3.12",
            |ctx| {
                let r = ctx.get("/Groups/cf-does-not-exist-0000")?;
                ctx.status(&r, &[404], "")
            },
        ),
        c(
            "groups.list.list-response",
            "GET /Groups is a ListResponse",
            "RFC 7644 §3.4.2",
            |ctx| {
                ctx.create_group("glist", &[])?;
                let l = ctx.list("/Groups?count=5")?;
                ctx.ensure(
                    l["totalResults"].as_u64().unwrap_or(0) >= 1,
                    "totalResults >= 1",
                )
            },
        ),
        c(
            "groups.put.replace-displayname",
            "PUT replaces the displayName",
            "RFC 7644 §3.5.1",
            |ctx| {
                let g = ctx.create_group("gput", &[])?;
                let name = ctx.unique("gput-renamed");
                let p = format!("/Groups/{}", id_of(&g));
                let r = ctx.put(&p, &json!({"schemas": [GROUP], "displayName": name}))?;
                ctx.status(&r, &[200], "")?;
                let got = ctx.fetch(&p)?;
                ctx.ensure(dn(&got) == name, format!("displayName {name:?}"))
            },
        ),
        c(
            "groups.put.replace-members",
            "PUT replaces the member list",
            "RFC 7644 §3.5.1",
            |ctx| {
                let u1 = user(ctx, "gpm1")?;
                let u2 = user(ctx, "gpm2")?;
                let g = ctx.create_group("gpm", &[&u1])?;
                let p = format!("/Groups/{}", id_of(&g));
                let r = ctx.put(
                    &p,
                    &json!({"schemas": [GROUP], "displayName": dn(&g), "members": [{"value": u2}]}),
                )?;
                ctx.status(&r, &[200], "")?;
                let got = ctx.fetch(&p)?;
                ctx.ensure(
                    values_of(&got, "members") == vec![u2.clone()],
                    format!("members [{u2}] only"),
                )
            },
        ),
        c(
            "groups.put.unknown-404",
            "PUT to an unknown group id is 404",
            "RFC 7644 §3.12",
            |ctx| {
                let name = ctx.unique("gput404");
                let r = ctx.put(
                    "/Groups/cf-does-not-exist-0000",
                    &json!({"schemas": [GROUP], "displayName": name}),
                )?;
                ctx.status(&r, &[404], "")
            },
        ),
        c(
            "groups.delete.status-204",
            "DELETE /Groups/<id> is 204 and the group is gone",
            "RFC 7644 §3.6",
            |ctx| {
                let g = ctx.create_group("gdel", &[])?;
                let p = format!("/Groups/{}", id_of(&g));
                let r = ctx.delete(&p)?;
                ctx.status(&r, &[204], "")?;
                let r = ctx.get(&p)?;
                ctx.status(&r, &[404], "GET after DELETE")
            },
        ),
        c(
            "groups.delete.keeps-members",
            "Deleting a group does not delete its member users",
            "RFC 7644 §3.6",
            |ctx| {
                let u = user(ctx, "gdk")?;
                let g = ctx.create_group("gdk", &[&u])?;
                let r = ctx.delete(&format!("/Groups/{}", id_of(&g)))?;
                ctx.status(&r, &[204], "")?;
                let r = ctx.get(&format!("/Users/{u}"))?;
                ctx.status(&r, &[200], "the member user still exists")
            },
        ),
    ]
}
