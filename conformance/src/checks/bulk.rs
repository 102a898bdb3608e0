//! Bulk operations with `bulkId` references (RFC 7644 §3.7).

use serde_json::{Value, json};

use super::{Check, Feature, c};
use crate::ctx::{Ctx, GROUP, Stop, USER, attr, id_of, values_of};

const R: &str = "RFC 7644 §3.7";
const BULK_REQ: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESP: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// Posts a BulkRequest; tracks every created location; returns the response operations.
fn bulk(
    ctx: &mut Ctx,
    ops: Value,
    fail_on_errors: Option<u64>,
) -> Result<(Value, Vec<Value>), Stop> {
    let mut req = json!({"schemas": [BULK_REQ], "Operations": ops});
    if let Some(n) = fail_on_errors {
        req["failOnErrors"] = json!(n);
    }
    let r = ctx.post("/Bulk", &req)?;
    let resp_ops = attr(r.j(), "Operations")
        .as_array()
        .cloned()
        .unwrap_or_default();
    for op in &resp_ops {
        let method = attr(op, "method").as_str().unwrap_or_default();
        let status = status_of(op);
        if method.eq_ignore_ascii_case("POST")
            && (200..300).contains(&status)
            && let Some(loc) = attr(op, "location").as_str()
        {
            ctx.track(loc.to_string());
        }
    }
    ctx.status(&r, &[200], "BulkResponse")?;
    let v = ctx.obj(&r)?;
    Ok((v, resp_ops))
}

/// The status of a bulk response operation (a string per RFC 7644 §3.7.3; an integer is tolerated).
fn status_of(op: &Value) -> u16 {
    let s = attr(op, "status");
    s.as_str()
        .and_then(|x| x.trim().parse().ok())
        .or_else(|| s.as_u64().map(|n| n as u16))
        .unwrap_or(0)
}

fn loc_id(op: &Value) -> String {
    attr(op, "location")
        .as_str()
        .and_then(|l| l.rsplit('/').next())
        .unwrap_or_default()
        .to_string()
}

fn user_data(ctx: &mut Ctx, label: &str) -> Value {
    let name = ctx.unique(label);
    json!({"schemas": [USER], "userName": name})
}

pub(super) fn checks() -> Vec<Check> {
    vec![
        c("bulk.post.user", "A bulk POST creates a user and reports status 201 and its location", R, |ctx| {
            let data = user_data(ctx, "bulkpost");
            let (_, ops) = bulk(ctx, json!([{"method": "POST", "path": "/Users", "bulkId": "u1", "data": data}]), None)?;
            let op = ops.first().cloned().unwrap_or_default();
            ctx.ensure(status_of(&op) == 201 && attr(&op, "bulkId") == "u1" && attr(&op, "location").is_string(), "Operations[0]: status \"201\", bulkId \"u1\", a location")?;
            let loc = attr(&op, "location").as_str().unwrap_or_default().to_string();
            let r = ctx.get(&loc)?;
            ctx.status(&r, &[200], "the created user at its location")
        }),
        c("bulk.response.schema", "The BulkResponse lists its schema and one result per operation", "RFC 7644 §3.7.3", |ctx| {
            let a = user_data(ctx, "bulkschema-a");
            let b = user_data(ctx, "bulkschema-b");
            let (v, ops) = bulk(ctx, json!([{"method": "POST", "path": "/Users", "bulkId": "a", "data": a}, {"method": "POST", "path": "/Users", "bulkId": "b", "data": b}]), None)?;
            ctx.ensure(attr(&v, "schemas").as_array().is_some_and(|s| s.iter().any(|x| x == BULK_RESP)), format!("schemas [{BULK_RESP}]"))?;
            ctx.ensure(ops.len() == 2 && ops.iter().all(|o| attr(o, "status").is_string()), "two Operations, each with status as a string")
        }),
        c("bulk.bulkid.member-reference", "A group member \"bulkId:x\" resolves to the user created in the same request", "RFC 7644 §3.7.2", |ctx| {
            let u = user_data(ctx, "bulkref");
            let gname = ctx.unique("bulkrefg");
            let (_, ops) = bulk(ctx, json!([
                {"method": "POST", "path": "/Users", "bulkId": "qwerty", "data": u},
                {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"schemas": [GROUP], "displayName": gname, "members": [{"type": "User", "value": "bulkId:qwerty"}]}}
            ]), None)?;
            ctx.ensure(ops.len() == 2 && status_of(&ops[0]) == 201 && status_of(&ops[1]) == 201, "both operations 201")?;
            let uid = loc_id(&ops[0]);
            let loc = attr(&ops[1], "location").as_str().unwrap_or_default().to_string();
            let g = ctx.fetch(&loc)?;
            ctx.ensure(values_of(&g, "members") == vec![uid.clone()], format!("group members [{uid}] (the id the user got)"))
        }),
        c("bulk.bulkid.forward-reference", "A bulkId used before the operation defining it is resolved", "RFC 7644 §3.7.2", |ctx| {
            let u = user_data(ctx, "bulkfwd");
            let gname = ctx.unique("bulkfwdg");
            let (_, ops) = bulk(ctx, json!([
                {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"schemas": [GROUP], "displayName": gname, "members": [{"type": "User", "value": "bulkId:later"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "later", "data": u}
            ]), None)?;
            let find = |b: &str| ops.iter().find(|o| attr(o, "bulkId") == b).cloned().unwrap_or_default();
            let (g, usr) = (find("g1"), find("later"));
            ctx.ensure(status_of(&g) == 201 && status_of(&usr) == 201, "both operations 201")?;
            let loc = attr(&g, "location").as_str().unwrap_or_default().to_string();
            let gv = ctx.fetch(&loc)?;
            ctx.ensure(values_of(&gv, "members") == vec![loc_id(&usr)], "group members [the user's id]")
        }),
        c("bulk.put-patch-delete", "PUT, PATCH and DELETE operations on existing users", R, |ctx| {
            let a = ctx.create_user("bulka", json!({}))?;
            let b = ctx.create_user("bulkb", json!({}))?;
            let d = ctx.create_user("bulkd", json!({}))?;
            let (ida, idb, idd) = (id_of(&a), id_of(&b), id_of(&d));
            let (_, ops) = bulk(ctx, json!([
                {"method": "PUT", "path": format!("/Users/{ida}"), "data": {"schemas": [USER], "userName": attr(&a, "userName"), "title": "BulkPut"}},
                {"method": "PATCH", "path": format!("/Users/{idb}"), "data": {"schemas": [crate::ctx::PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "BulkPatch"}]}},
                {"method": "DELETE", "path": format!("/Users/{idd}")}
            ]), None)?;
            let st: Vec<u16> = ops.iter().map(status_of).collect();
            ctx.ensure(st.len() == 3 && st[0] == 200 && (st[1] == 200 || st[1] == 204) && st[2] == 204, format!("statuses 200, 200|204, 204; got {st:?}"))?;
            let va = ctx.fetch(&format!("/Users/{ida}"))?;
            let vb = ctx.fetch(&format!("/Users/{idb}"))?;
            ctx.ensure(attr(&va, "title") == "BulkPut" && attr(&vb, "title") == "BulkPatch", "titles BulkPut and BulkPatch applied")?;
            let r = ctx.get(&format!("/Users/{idd}"))?;
            ctx.status(&r, &[404], "the bulk-deleted user is gone")
        }),
        c("bulk.error-per-operation", "An invalid operation fails alone with its own error status", "RFC 7644 §3.7.3", |ctx| {
            let good = user_data(ctx, "bulkgood");
            let (_, ops) = bulk(ctx, json!([
                {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"schemas": [USER], "displayName": "no userName"}},
                {"method": "POST", "path": "/Users", "bulkId": "good", "data": good}
            ]), None)?;
            let find = |b: &str| ops.iter().find(|o| attr(o, "bulkId") == b).cloned().unwrap_or_default();
            let (bad, ok) = (find("bad"), find("good"));
            ctx.ensure(status_of(&bad) == 400 && attr(attr(&bad, "response"), "status").is_string(), "the bad operation: status \"400\" with an Error response")?;
            ctx.ensure(status_of(&ok) == 201, "the good operation: status \"201\"")
        }),
        c("bulk.fail-on-errors", "failOnErrors=1 stops after the first error", "RFC 7644 §3.7.3", |ctx| {
            let after = user_data(ctx, "bulkfoe");
            let (_, ops) = bulk(ctx, json!([
                {"method": "POST", "path": "/Users", "bulkId": "e1", "data": {"schemas": [USER], "displayName": "no userName"}},
                {"method": "POST", "path": "/Users", "bulkId": "e2", "data": {"schemas": [USER], "displayName": "no userName either"}},
                {"method": "POST", "path": "/Users", "bulkId": "late", "data": after}
            ]), Some(1))?;
            let processed_late = ops.iter().any(|o| attr(o, "bulkId") == "late" && (200..300).contains(&status_of(o)));
            ctx.ensure(ops.len() == 1 && !processed_late, format!("only the first (failed) operation reported; got {} operations", ops.len()))
        }),
        c("bulk.max-operations-413", "More operations than maxOperations is 413", "RFC 7644 §3.7.4", |ctx| {
            let spc = ctx.spc().unwrap_or_default();
            let max = attr(attr(&spc, "bulk"), "maxOperations").as_u64().unwrap_or(0);
            if max == 0 || max > 2000 {
                return Err(Stop::Skip(format!("bulk.maxOperations {max} is not between 1 and 2000")));
            }
            let ops: Vec<Value> = (0..=max).map(|i| json!({"method": "DELETE", "path": format!("/Users/cf-none-{i}")})).collect();
            let r = ctx.post("/Bulk", &json!({"schemas": [BULK_REQ], "Operations": ops}))?;
            ctx.status(&r, &[413], "")
        }),
    ]
    .into_iter()
    .map(|c| c.needs(Feature::Bulk))
    .collect()
}
