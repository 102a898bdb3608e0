//! PATCH in every form (RFC 7644 §3.5.2): add, replace, remove, with and without
//! paths, value filters, extension paths, errors and atomicity.

use serde_json::{Value, json};

use super::common::sorted;
use super::{Check, Feature, c};
use crate::ctx::{Ctx, ENTERPRISE, Res, Stop, absent, at, attr, id_of, typed_value, values_of};

const ADD: &str = "RFC 7644 §3.5.2.1";
const REMOVE: &str = "RFC 7644 §3.5.2.2";
const REPLACE: &str = "RFC 7644 §3.5.2.3";

/// Creates a user with two emails (work, home) and a phone number, PATCHes it with
/// `ops`, expects 200/204, and returns the user as read back with GET.
fn patched(ctx: &mut Ctx, ops: Value) -> Result<Value, Stop> {
    let u = ctx.create_user("patch", json!({
        "emails": [{"type": "work", "value": "work@example.com", "primary": true}, {"type": "home", "value": "home@example.com"}],
        "phoneNumbers": [{"type": "work", "value": "555-0100"}],
        "title": "Before", "nickName": "nick",
    }))?;
    let p = format!("/Users/{}", id_of(&u));
    let r = ctx.patch(&p, ops)?;
    ctx.status(&r, &[200, 204], "PATCH applied")?;
    ctx.fetch(&p)
}

fn expect_patch(ctx: &mut Ctx, ops: Value, what: &str, ok: impl Fn(&Value) -> bool) -> Res {
    let v = patched(ctx, ops)?;
    if ok(&v) {
        Ok(())
    } else {
        Err(ctx.fail(format!("after the PATCH, GET shows {what}")))
    }
}

/// PATCHes a fresh user with `ops` and expects a 400 error, the user left unchanged.
fn expect_400(ctx: &mut Ctx, ops: Value, scim_types: &[&str]) -> Res {
    let u = ctx.create_user("patcherr", json!({"title": "Unchanged"}))?;
    let p = format!("/Users/{}", id_of(&u));
    let r = ctx.patch(&p, ops)?;
    ctx.status(&r, &[400], "")?;
    if !scim_types.is_empty() {
        let got = attr(r.j(), "scimType").as_str().unwrap_or_default();
        ctx.ensure(
            scim_types.contains(&got),
            format!("scimType {}", scim_types.join(" or ")),
        )?;
    }
    let v = ctx.fetch(&p)?;
    ctx.ensure(
        attr(&v, "title") == "Unchanged",
        "the user unchanged (title \"Unchanged\")",
    )
}

fn group_with(ctx: &mut Ctx, n: usize, members: usize) -> Result<(String, Vec<String>), Stop> {
    let mut users = Vec::new();
    for i in 0..n {
        users.push(id_of(&ctx.create_user(&format!("pgm{i}"), json!({}))?));
    }
    let refs: Vec<&str> = users.iter().take(members).map(String::as_str).collect();
    let g = ctx.create_group("pg", &refs)?;
    Ok((format!("/Groups/{}", id_of(&g)), users))
}

fn members_after(ctx: &mut Ctx, p: &str, ops: Value) -> Result<Vec<String>, Stop> {
    let r = ctx.patch(p, ops)?;
    ctx.status(&r, &[200, 204], "PATCH applied")?;
    let g = ctx.fetch(p)?;
    let mut m = values_of(&g, "members");
    m.sort();
    Ok(m)
}

pub(super) fn checks() -> Vec<Check> {
    vec![
        c("patch.add.single-valued", "add sets a single-valued attribute", ADD, |ctx| {
            expect_patch(ctx, json!([{"op": "add", "path": "displayName", "value": "Added Name"}]), "displayName \"Added Name\"", |v| attr(v, "displayName") == "Added Name")
        }),
        c("patch.add.existing-replaces", "add on a set single-valued attribute replaces it", ADD, |ctx| {
            expect_patch(ctx, json!([{"op": "add", "path": "nickName", "value": "Babs"}]), "nickName \"Babs\"", |v| attr(v, "nickName") == "Babs")
        }),
        c("patch.add.multi-valued-appends", "add on a multi-valued attribute appends", ADD, |ctx| {
            expect_patch(ctx, json!([{"op": "add", "path": "emails", "value": [{"type": "other", "value": "other@example.com"}]}]),
                "three emails: work, home and other", |v| attr(v, "emails").as_array().map(Vec::len) == Some(3) && typed_value(v, "emails", "other").as_deref() == Some("other@example.com"))
        }),
        c("patch.add.no-path", "add without path merges a value object", ADD, |ctx| {
            expect_patch(ctx, json!([{"op": "add", "value": {"title": "NoPath", "profileUrl": "https://example.com/p"}}]), "title \"NoPath\" and profileUrl set",
                |v| attr(v, "title") == "NoPath" && attr(v, "profileUrl") == "https://example.com/p")
        }),
        c("patch.add.sub-attribute", "add on a complex sub-attribute", ADD, |ctx| {
            expect_patch(ctx, json!([{"op": "add", "path": "name.middleName", "value": "Mid"}]), "name.middleName \"Mid\", name.givenName kept",
                |v| at(v, "name.middleName") == "Mid" && at(v, "name.givenName") == "Conf")
        }),
        c("patch.add.extension-path", "add on a fully qualified extension attribute path", "RFC 7644 §3.5.2.1, §3.10", |ctx| {
            expect_patch(ctx, json!([{"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "Patched Dept"}]),
                &format!("{ENTERPRISE}.department \"Patched Dept\""), |v| attr(attr(v, ENTERPRISE), "department") == "Patched Dept")
        }),
        c("patch.add.complex-value", "add with a complex value object on a complex attribute", ADD, |ctx| {
            expect_patch(ctx, json!([{"op": "add", "path": "name", "value": {"honorificPrefix": "Dr."}}]), "name.honorificPrefix \"Dr.\", name.familyName kept",
                |v| at(v, "name.honorificPrefix") == "Dr." && at(v, "name.familyName") == "Ormance")
        }),
        c("patch.replace.single-valued", "replace a single-valued attribute", REPLACE, |ctx| {
            expect_patch(ctx, json!([{"op": "replace", "path": "title", "value": "After"}]), "title \"After\"", |v| attr(v, "title") == "After")
        }),
        c("patch.replace.sub-attribute", "replace a sub-attribute keeps its siblings", REPLACE, |ctx| {
            expect_patch(ctx, json!([{"op": "replace", "path": "name.familyName", "value": "Replaced"}]), "name.familyName \"Replaced\", name.givenName \"Conf\"",
                |v| at(v, "name.familyName") == "Replaced" && at(v, "name.givenName") == "Conf")
        }),
        c("patch.replace.complex-merges", "replace on a complex attribute leaves unspecified sub-attributes", REPLACE, |ctx| {
            expect_patch(ctx, json!([{"op": "replace", "path": "name", "value": {"familyName": "Merged"}}]), "name.familyName \"Merged\", name.givenName \"Conf\" unchanged",
                |v| at(v, "name.familyName") == "Merged" && at(v, "name.givenName") == "Conf")
        }),
        c("patch.replace.multi-valued-whole", "replace a whole multi-valued attribute", REPLACE, |ctx| {
            expect_patch(ctx, json!([{"op": "replace", "path": "emails", "value": [{"type": "work", "value": "only@example.com"}]}]), "emails exactly [work only@example.com]",
                |v| attr(v, "emails").as_array().map(Vec::len) == Some(1) && typed_value(v, "emails", "work").as_deref() == Some("only@example.com"))
        }),
        c("patch.replace.value-filter", "replace through a value filter path (emails[type eq \"work\"].value)", REPLACE, |ctx| {
            expect_patch(ctx, json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new-work@example.com"}]), "work email new-work@example.com, home email kept",
                |v| typed_value(v, "emails", "work").as_deref() == Some("new-work@example.com") && typed_value(v, "emails", "home").as_deref() == Some("home@example.com"))
        }),
        c("patch.replace.no-path", "replace without path applies a value object", REPLACE, |ctx| {
            expect_patch(ctx, json!([{"op": "replace", "value": {"displayName": "NoPathName", "name": {"givenName": "NoPathGiven"}}}]),
                "displayName \"NoPathName\", name.givenName \"NoPathGiven\", name.familyName kept",
                |v| attr(v, "displayName") == "NoPathName" && at(v, "name.givenName") == "NoPathGiven" && at(v, "name.familyName") == "Ormance")
        }),
        c("patch.replace.boolean", "replace active with a JSON boolean", REPLACE, |ctx| {
            expect_patch(ctx, json!([{"op": "replace", "path": "active", "value": false}]), "active false", |v| attr(v, "active") == &json!(false))
        }),
        c("patch.replace.extension-path", "replace a fully qualified extension attribute", "RFC 7644 §3.5.2.3, §3.10", |ctx| {
            expect_patch(ctx, json!([{"op": "replace", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "42"}]),
                "enterprise employeeNumber \"42\"", |v| attr(attr(v, ENTERPRISE), "employeeNumber") == "42")
        }),
        c("patch.remove.single-valued", "remove a single-valued attribute", REMOVE, |ctx| {
            expect_patch(ctx, json!([{"op": "remove", "path": "title"}]), "no title", |v| absent(attr(v, "title")))
        }),
        c("patch.remove.sub-attribute", "remove a sub-attribute keeps its siblings", REMOVE, |ctx| {
            expect_patch(ctx, json!([{"op": "remove", "path": "name.givenName"}]), "no name.givenName, name.familyName kept",
                |v| absent(at(v, "name.givenName")) && at(v, "name.familyName") == "Ormance")
        }),
        c("patch.remove.value-filter", "remove the elements matching a value filter", REMOVE, |ctx| {
            expect_patch(ctx, json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]), "only the work email left",
                |v| attr(v, "emails").as_array().map(Vec::len) == Some(1) && typed_value(v, "emails", "work").is_some())
        }),
        c("patch.remove.multi-valued-all", "remove a whole multi-valued attribute", REMOVE, |ctx| {
            expect_patch(ctx, json!([{"op": "remove", "path": "phoneNumbers"}]), "no phoneNumbers", |v| absent(attr(v, "phoneNumbers")))
        }),
        c("patch.multiple-operations", "Several operations in one request apply in order", "RFC 7644 §3.5.2", |ctx| {
            expect_patch(ctx, json!([{"op": "replace", "path": "title", "value": "First"}, {"op": "replace", "path": "title", "value": "Second"}, {"op": "add", "path": "nickName", "value": "N2"}]),
                "title \"Second\" and nickName \"N2\"", |v| attr(v, "title") == "Second" && attr(v, "nickName") == "N2")
        }),
        c("patch.response.body-or-204", "PATCH answers 204, or 200 with the updated resource", "RFC 7644 §3.5.2", |ctx| {
            let u = ctx.create_user("patchresp", json!({}))?;
            let r = ctx.patch(&format!("/Users/{}", id_of(&u)), json!([{"op": "replace", "path": "title", "value": "Resp"}]))?;
            ctx.status(&r, &[200, 204], "")?;
            ctx.ensure(r.status == 204 || attr(r.j(), "title") == "Resp", "a 200 body showing title \"Resp\"")
        }),
        c("patch.error.remove-without-path", "remove without path is 400 noTarget", REMOVE, |ctx| expect_400(ctx, json!([{"op": "remove"}]), &["noTarget"])),
        c("patch.error.invalid-path", "An unparsable path is 400 invalidPath (or invalidFilter)", "RFC 7644 §3.5.2, §3.12", |ctx| {
            expect_400(ctx, json!([{"op": "replace", "path": "emails[type eq ", "value": "x"}]), &["invalidPath", "invalidFilter"])
        }),
        c("patch.error.unknown-op", "An unknown op is 400", "RFC 7644 §3.5.2", |ctx| expect_400(ctx, json!([{"op": "merge", "path": "title", "value": "x"}]), &[])),
        c("patch.error.readonly-id", "Replacing the readOnly id is refused with 400 mutability", "RFC 7644 §3.5.2, RFC 7643 §3.1", |ctx| {
            expect_400(ctx, json!([{"op": "replace", "path": "id", "value": "cf-new-id"}]), &["mutability"])
        }),
        c("patch.error.atomic", "A failing operation leaves the resource unchanged (all or nothing)", "RFC 7644 §3.5.2", |ctx| {
            expect_400(ctx, json!([{"op": "replace", "path": "title", "value": "Changed"}, {"op": "remove"}]), &[])
        }),
        c("patch.error.missing-operations", "A PatchOp without Operations is 400", "RFC 7644 §3.5.2", |ctx| {
            let u = ctx.create_user("patchnoops", json!({}))?;
            let r = ctx.send("PATCH", &format!("/Users/{}", id_of(&u)), Some(&json!({"schemas": [crate::ctx::PATCH_OP]})))?;
            ctx.status(&r, &[400], "")
        }),
        c("patch.unknown-id-404", "PATCH of an unknown id is 404", "RFC 7644 §3.12", |ctx| {
            let r = ctx.patch("/Users/cf-does-not-exist-0000", json!([{"op": "replace", "path": "title", "value": "x"}]))?;
            ctx.status(&r, &[404], "")
        }),
        c("patch.group.add-member", "add members to a group", ADD, |ctx| {
            let (p, users) = group_with(ctx, 2, 1)?;
            let m = members_after(ctx, &p, json!([{"op": "add", "path": "members", "value": [{"value": users[1]}]}]))?;
            ctx.ensure(m == sorted(users.clone()), format!("members {users:?}"))
        }),
        c("patch.group.add-several-members", "add several members in one operation", ADD, |ctx| {
            let (p, users) = group_with(ctx, 3, 0)?;
            let value: Vec<Value> = users.iter().map(|u| json!({"value": u})).collect();
            let m = members_after(ctx, &p, json!([{"op": "add", "path": "members", "value": value}]))?;
            ctx.ensure(m == sorted(users.clone()), format!("members {users:?}"))
        }),
        c("patch.group.add-existing-member", "Adding an existing member succeeds without duplicating it", ADD, |ctx| {
            let (p, users) = group_with(ctx, 1, 1)?;
            let m = members_after(ctx, &p, json!([{"op": "add", "path": "members", "value": [{"value": users[0]}]}]))?;
            ctx.ensure(m == users, format!("members exactly {users:?} (no duplicate)"))
        }),
        c("patch.group.remove-member-filter", "remove members[value eq \"id\"] removes only that member", REMOVE, |ctx| {
            let (p, users) = group_with(ctx, 2, 2)?;
            let m = members_after(ctx, &p, json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", users[0])}]))?;
            ctx.ensure(m == vec![users[1].clone()], format!("members [{}]", users[1]))
        }),
        c("patch.group.remove-all-members", "remove members without filter empties the group", REMOVE, |ctx| {
            let (p, _) = group_with(ctx, 2, 2)?;
            let m = members_after(ctx, &p, json!([{"op": "remove", "path": "members"}]))?;
            ctx.ensure(m.is_empty(), "no members")
        }),
        c("patch.group.replace-members", "replace members sets the whole list", REPLACE, |ctx| {
            let (p, users) = group_with(ctx, 3, 2)?;
            let m = members_after(ctx, &p, json!([{"op": "replace", "path": "members", "value": [{"value": users[2]}]}]))?;
            ctx.ensure(m == vec![users[2].clone()], format!("members [{}]", users[2]))
        }),
        c("patch.group.replace-displayname", "replace a group's displayName", REPLACE, |ctx| {
            let (p, _) = group_with(ctx, 0, 0)?;
            let name = ctx.unique("renamed");
            let r = ctx.patch(&p, json!([{"op": "replace", "path": "displayName", "value": name}]))?;
            ctx.status(&r, &[200, 204], "")?;
            let g = ctx.fetch(&p)?;
            ctx.ensure(attr(&g, "displayName") == name.as_str(), format!("displayName {name:?}"))
        }),
    ]
    .into_iter()
    .map(|c| c.needs(Feature::Patch))
    .collect()
}
