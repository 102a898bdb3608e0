//! The Entra ID profile, groups: creation with Entra's schema list, the group match,
//! membership in both dialects (quirks Q6, Q7, Q9, Q12), and two whole provisioning
//! cycles (entra-okta.md §1.7), one per dialect.

use serde_json::json;

use super::common::{members, sorted, uname};
use super::entra::{ADSCIM, entra_user, group, manager_value, patch_then_get, user};
use super::{Check, c};
use crate::ctx::{Ctx, ENTERPRISE, GROUP, Res, absent, attr, id_of, ids};

/// One Entra provisioning cycle (entra-okta.md §1.7) in the legacy or the flag dialect.
fn cycle(ctx: &mut Ctx, flag: bool) -> Res {
    let q = if flag { "aadOptscim062020&" } else { "" };
    let (op_add, op_replace, op_remove) = if flag {
        ("add", "replace", "remove")
    } else {
        ("Add", "Replace", "Remove")
    };
    // Test connection: random GUID, expect an empty 200 ListResponse.
    let guid = uuid::Uuid::new_v4().to_string();
    let l = ctx.list(&format!(
        "/Users?{q}filter={}",
        Ctx::enc(&format!("userName eq \"{guid}\""))
    ))?;
    ctx.ensure(
        l["totalResults"] == 0,
        "Test Connection: totalResults 0 for a random GUID",
    )?;
    let r = ctx.get("/Schemas")?;
    ctx.status(&r, &[200], "schema discovery on save")?;
    // Manager (bob) first, then alice.
    let (bob, _) = user(ctx, "cyc-bob")?;
    let alice_body = entra_user(ctx, "cyc-alice");
    let an = uname(&alice_body);
    let l = ctx.list(&format!(
        "/Users?{q}filter={}",
        Ctx::enc(&format!("userName eq \"{an}\""))
    ))?;
    ctx.ensure(
        l["totalResults"] == 0,
        "match before create: totalResults 0",
    )?;
    let alice = ctx.create_raw("/Users", &alice_body)?;
    let ap = format!("/Users/{}", id_of(&alice));
    let mgr = if flag {
        json!({"value": id_of(&bob)})
    } else {
        json!(id_of(&bob))
    };
    let v = patch_then_get(
        ctx,
        &ap,
        json!([{"op": op_add, "path": format!("{ENTERPRISE}:manager"), "value": mgr}]),
    )?;
    ctx.ensure(
        attr(&manager_value(&v), "value") == id_of(&bob).as_str(),
        format!("manager {{\"value\": \"{}\"}}", id_of(&bob)),
    )?;
    // Group: match, create without members, add alice and bob.
    let gname = ctx.unique("cyc-sales");
    let l = ctx.list(&format!(
        "/Groups?{q}excludedAttributes=members&filter={}",
        Ctx::enc(&format!("displayName eq \"{gname}\""))
    ))?;
    ctx.ensure(
        l["totalResults"] == 0,
        "group match before create: totalResults 0",
    )?;
    let g = ctx.create_raw("/Groups", &json!({"schemas": [GROUP, ADSCIM], "externalId": format!("{gname}-ext"), "displayName": gname, "meta": {"resourceType": "Group"}}))?;
    let gp = format!("/Groups/{}", id_of(&g));
    let r = ctx.patch(&gp, json!([{"op": op_add, "path": "members", "value": [{"$ref": null, "value": id_of(&alice)}, {"$ref": null, "value": id_of(&bob)}]}]))?;
    ctx.status(&r, &[200, 204], "membership add")?;
    let m = members(ctx, &gp)?;
    ctx.ensure(
        m == sorted(vec![id_of(&alice), id_of(&bob)]),
        "group members alice and bob",
    )?;
    // Incremental: title change.
    let l = ctx.list(&format!(
        "/Users?{q}filter={}",
        Ctx::enc(&format!("userName eq \"{an}\""))
    ))?;
    ctx.ensure(ids(&l) == vec![id_of(&alice)], "match finds alice")?;
    let v = patch_then_get(
        ctx,
        &ap,
        json!([{"op": op_replace, "path": "title", "value": "VP"}]),
    )?;
    ctx.ensure(attr(&v, "title") == "VP", "title \"VP\"")?;
    // Alice removed from the group: only alice goes.
    let rm = if flag {
        json!([{"op": op_remove, "path": format!("members[value eq \"{}\"]", id_of(&alice))}])
    } else {
        json!([{"op": op_remove, "path": "members", "value": [{"value": id_of(&alice)}]}])
    };
    let r = ctx.patch(&gp, rm)?;
    ctx.status(&r, &[200, 204], "member removal")?;
    let m = members(ctx, &gp)?;
    if m != vec![id_of(&bob)] {
        return Err(ctx.fail_with(
            format!("group keeps only bob ({})", id_of(&bob)),
            format!("members {m:?}"),
        ));
    }
    // Disable, re-enable.
    let (f, t) = if flag {
        (json!(false), json!(true))
    } else {
        (json!("False"), json!("True"))
    };
    let v = patch_then_get(
        ctx,
        &ap,
        json!([{"op": op_replace, "path": "active", "value": f}]),
    )?;
    ctx.ensure(
        attr(&v, "active") == &json!(false),
        "active false (JSON boolean) after disable",
    )?;
    let v = patch_then_get(
        ctx,
        &ap,
        json!([{"op": op_replace, "path": "active", "value": t}]),
    )?;
    ctx.ensure(
        attr(&v, "active") == &json!(true),
        "active true (JSON boolean) after re-enable",
    )?;
    // Hard delete of alice and the group.
    let r = ctx.delete(&ap)?;
    ctx.status(&r, &[204], "user delete")?;
    let r = ctx.delete(&gp)?;
    ctx.status(&r, &[204], "group delete")
}

pub(super) fn checks() -> Vec<Check> {
    vec![
        c(
            "entra.group.create",
            "Group create with the ADSCIM schema is 201 with no or empty members",
            "Entra S1 §1.4 H, Q14",
            |ctx| {
                let name = ctx.unique("egrp");
                let body = json!({"schemas": [GROUP, ADSCIM], "externalId": format!("{name}-ext"), "displayName": name, "meta": {"resourceType": "Group"}});
                let g = ctx.create_raw("/Groups", &body)?;
                ctx.ensure(absent(attr(&g, "members")), "members absent or []")
            },
        ),
        c(
            "entra.group.get-excluded-members",
            "GET /Groups/<id>?excludedAttributes=members omits members",
            "Entra Q9",
            |ctx| {
                let (u, _) = user(ctx, "egex")?;
                let (_, p) = group(ctx, "egex")?;
                patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": id_of(&u)}]}]),
                )?;
                let v = ctx.fetch(&format!("{p}?excludedAttributes=members"))?;
                ctx.ensure(
                    absent(attr(&v, "members")) && attr(&v, "displayName").is_string(),
                    "displayName without members",
                )
            },
        ),
        c(
            "entra.group.match-excluded-members",
            "Group match filter with excludedAttributes=members",
            "Entra S1 §1.2, Q9",
            |ctx| {
                let (u, _) = user(ctx, "egm")?;
                let (g, p) = group(ctx, "egm")?;
                patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": id_of(&u)}]}]),
                )?;
                let dn = attr(&g, "displayName")
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let l = ctx.list(&format!(
                    "/Groups?excludedAttributes=members&filter={}",
                    Ctx::enc(&format!("displayName eq \"{dn}\""))
                ))?;
                let r0 = l["Resources"][0].clone();
                ctx.ensure(
                    ids(&l) == vec![id_of(&g)] && absent(attr(&r0, "members")),
                    "exactly the group, without members",
                )
            },
        ),
        c(
            "entra.group.match-attribute-case",
            "Group filter with a capitalised attribute name (DisplayName eq)",
            "Entra Q10, S9",
            |ctx| {
                let (g, _) = group(ctx, "egcase")?;
                let dn = attr(&g, "displayName")
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let l = ctx.filter("/Groups", &format!("DisplayName eq \"{dn}\""), "")?;
                ctx.ensure(ids(&l) == vec![id_of(&g)], "exactly the group")
            },
        ),
        c(
            "entra.group.rename",
            "Replace displayName (capitalised op) renames the group",
            "Entra S1 §1.4 H",
            |ctx| {
                let (_, p) = group(ctx, "egren")?;
                let name = ctx.unique("egren-updated");
                let v = patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Replace", "path": "displayName", "value": name}]),
                )?;
                ctx.ensure(
                    attr(&v, "displayName") == name.as_str(),
                    format!("displayName {name}"),
                )
            },
        ),
        c(
            "entra.group.add-members-null-ref",
            "Add several members with \"$ref\": null in one operation",
            "Entra Q7, S1 §1.4 H",
            |ctx| {
                let (a, _) = user(ctx, "egma")?;
                let (b, _) = user(ctx, "egmb")?;
                let (_, p) = group(ctx, "egm2")?;
                patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": id_of(&a)}, {"$ref": null, "value": id_of(&b)}]}]),
                )?;
                let m = members(ctx, &p)?;
                ctx.ensure(m == sorted(vec![id_of(&a), id_of(&b)]), "both members")
            },
        ),
        c(
            "entra.group.readd-member",
            "Re-adding an existing member succeeds without a duplicate",
            "Entra Q7, I10",
            |ctx| {
                let (a, _) = user(ctx, "egra")?;
                let (_, p) = group(ctx, "egr")?;
                let ops = json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": id_of(&a)}]}]);
                patch_then_get(ctx, &p, ops.clone())?;
                patch_then_get(ctx, &p, ops)?;
                let m = members(ctx, &p)?;
                if m == vec![id_of(&a)] {
                    Ok(())
                } else {
                    Err(ctx.fail_with("exactly one member", format!("members {m:?}")))
                }
            },
        ),
        c(
            "entra.group.legacy-member-remove",
            "Legacy Remove members with a value array removes only the listed members",
            "Entra Q6, S2",
            |ctx| {
                let (a, _) = user(ctx, "eglra")?;
                let (b, _) = user(ctx, "eglrb")?;
                let (_, p) = group(ctx, "eglr")?;
                patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "Add", "path": "members", "value": [{"value": id_of(&a)}, {"value": id_of(&b)}]}]),
                )?;
                let r = ctx.patch(&p, json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": id_of(&a)}]}]))?;
                ctx.status(&r, &[200, 204], "the group keeps its other member")?;
                let m = members(ctx, &p)?;
                if m == vec![id_of(&b)] {
                    Ok(())
                } else {
                    Err(ctx.fail_with(
                        format!("members [{}] (only the listed member removed)", id_of(&b)),
                        format!("members {m:?}"),
                    ))
                }
            },
        ),
        c(
            "entra.group.flag-member-remove",
            "Flag-dialect remove members[value eq \"id\"]",
            "Entra Q6 (aadOptscim062020)",
            |ctx| {
                let (a, _) = user(ctx, "egfra")?;
                let (b, _) = user(ctx, "egfrb")?;
                let (_, p) = group(ctx, "egfr")?;
                patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "add", "path": "members", "value": [{"value": id_of(&a)}, {"value": id_of(&b)}]}]),
                )?;
                patch_then_get(
                    ctx,
                    &p,
                    json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", id_of(&a))}]),
                )?;
                let m = members(ctx, &p)?;
                if m == vec![id_of(&b)] {
                    Ok(())
                } else {
                    Err(ctx.fail_with(format!("members [{}]", id_of(&b)), format!("members {m:?}")))
                }
            },
        ),
        c(
            "entra.group.unknown-member-skipped",
            "Unknown member ids in a group PATCH are skipped, known ones applied",
            "Entra decision (I10 #52600), Q7",
            |ctx| {
                let (a, _) = user(ctx, "egua")?;
                let (_, p) = group(ctx, "egu")?;
                let r = ctx.patch(&p, json!([{"op": "Add", "path": "members", "value": [{"value": id_of(&a)}, {"value": "cf-unknown-member-0000"}]}]))?;
                ctx.status(&r, &[200, 204], "unknown ids skipped, not rejected")?;
                let m = members(ctx, &p)?;
                if m == vec![id_of(&a)] {
                    Ok(())
                } else {
                    Err(ctx.fail_with(format!("members [{}]", id_of(&a)), format!("members {m:?}")))
                }
            },
        ),
        c(
            "entra.group.duplicate-displayname-409",
            "A second group with the same displayName is 409 uniqueness",
            "Entra Q12, S1 (group displayName uniqueness)",
            |ctx| {
                let (g, _) = group(ctx, "egdup")?;
                let body = json!({"schemas": [GROUP], "displayName": attr(&g, "displayName")});
                let r = ctx.post("/Groups", &body)?;
                if r.status < 300 {
                    let p = format!("/Groups/{}", id_of(r.j()));
                    ctx.track(p);
                }
                ctx.status(&r, &[409], "duplicate displayName")?;
                ctx.ensure(
                    attr(r.j(), "scimType") == "uniqueness",
                    "scimType \"uniqueness\"",
                )
            },
        ),
        c(
            "entra.group.delete-204",
            "Group delete is 204",
            "Entra S1 §1.4 H",
            |ctx| {
                let (_, p) = group(ctx, "egdel")?;
                let r = ctx.delete(&p)?;
                ctx.status(&r, &[204], "")
            },
        ),
        c(
            "entra.cycle.legacy",
            "A whole provisioning cycle in the legacy dialect",
            "Entra §1.7 trace, Q1 Q2 Q6",
            |ctx| cycle(ctx, false),
        ),
        c(
            "entra.cycle.aadoptscim062020",
            "A whole provisioning cycle in the aadOptscim062020 dialect",
            "Entra §1.7 trace, S2 flag",
            |ctx| cycle(ctx, true),
        ),
    ]
}
