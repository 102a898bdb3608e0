//! Versioning with ETags (RFC 7644 §3.14, RFC 7232).

use serde_json::{Value, json};

use super::{Check, Feature, c};
use crate::ctx::{Ctx, Stop, USER, attr, id_of};

const R: &str = "RFC 7644 §3.14";
const STALE: &str = "W/\"cf-stale-version\"";

/// Creates a user; returns (path, userName, current ETag from GET).
fn versioned(ctx: &mut Ctx) -> Result<(String, String, String), Stop> {
    let u = ctx.create_user("etag", json!({}))?;
    let p = format!("/Users/{}", id_of(&u));
    let r = ctx.get(&p)?;
    ctx.status(&r, &[200], "")?;
    let tag = r.header("etag").map(str::to_string).or_else(|| {
        attr(attr(r.j(), "meta"), "version")
            .as_str()
            .map(str::to_string)
    });
    let tag = tag.ok_or_else(|| ctx.fail("an ETag header or meta.version on GET"))?;
    Ok((
        p,
        attr(&u, "userName")
            .as_str()
            .unwrap_or_default()
            .to_string(),
        tag,
    ))
}

fn put_body(name: &str) -> Value {
    json!({"schemas": [USER], "userName": name, "title": "Versioned"})
}

pub(super) fn checks() -> Vec<Check> {
    vec![
        c("etag.get.header", "GET of a resource carries an ETag header", R, |ctx| {
            let u = ctx.create_user("etaghdr", json!({}))?;
            let r = ctx.get(&format!("/Users/{}", id_of(&u)))?;
            ctx.ensure(r.header("etag").is_some_and(|t| t.contains('"')), "an ETag header with a quoted entity tag")
        }),
        c("etag.meta-version-matches", "meta.version equals the ETag header", "RFC 7643 §3.1, RFC 7644 §3.14", |ctx| {
            let u = ctx.create_user("etagmeta", json!({}))?;
            let r = ctx.get(&format!("/Users/{}", id_of(&u)))?;
            let h = r.header("etag").unwrap_or_default().to_string();
            ctx.ensure(!h.is_empty() && attr(attr(r.j(), "meta"), "version") == h.as_str(), format!("meta.version equal to ETag {h:?}"))
        }),
        c("etag.post.header", "POST response carries an ETag header", R, |ctx| {
            let body = ctx.user_body("etagpost", json!({}));
            let r = ctx.post("/Users", &body)?;
            if let Some(id) = r.j().get("id").and_then(Value::as_str) {
                let p = format!("/Users/{id}");
                ctx.track(p);
            }
            ctx.status(&r, &[201], "")?;
            ctx.ensure(r.header("etag").is_some(), "an ETag header")
        }),
        c("etag.changes-on-update", "The version changes when the resource changes", R, |ctx| {
            let (p, name, tag) = versioned(ctx)?;
            let r = ctx.put(&p, &put_body(&name))?;
            ctx.status(&r, &[200], "")?;
            let r = ctx.get(&p)?;
            let new = r.header("etag").map(str::to_string).or_else(|| attr(attr(r.j(), "meta"), "version").as_str().map(str::to_string)).unwrap_or_default();
            ctx.ensure(!new.is_empty() && new != tag, format!("a version different from {tag}"))
        }),
        c("etag.if-none-match-304", "GET with If-None-Match of the current version is 304", "RFC 7644 §3.14, RFC 7232 §3.2", |ctx| {
            let (p, _, tag) = versioned(ctx)?;
            let r = ctx.send_full("GET", &p, None, &[("if-none-match", &tag)], None)?;
            ctx.status(&r, &[304], "")
        }),
        c("etag.if-none-match-stale-200", "GET with If-None-Match of another version is 200", "RFC 7644 §3.14, RFC 7232 §3.2", |ctx| {
            let (p, _, _) = versioned(ctx)?;
            let r = ctx.send_full("GET", &p, None, &[("if-none-match", STALE)], None)?;
            ctx.status(&r, &[200], "")
        }),
        c("etag.if-match-put-current", "PUT with If-Match of the current version succeeds", R, |ctx| {
            let (p, name, tag) = versioned(ctx)?;
            let body = put_body(&name).to_string();
            let r = ctx.send_full("PUT", &p, Some(&body), &[("if-match", &tag)], None)?;
            ctx.status(&r, &[200], "")
        }),
        c("etag.if-match-put-stale-412", "PUT with a stale If-Match is 412 and changes nothing", R, |ctx| {
            let (p, name, _) = versioned(ctx)?;
            let body = put_body(&name).to_string();
            let r = ctx.send_full("PUT", &p, Some(&body), &[("if-match", STALE)], None)?;
            ctx.status(&r, &[412], "")?;
            let v = ctx.fetch(&p)?;
            ctx.ensure(attr(&v, "title").is_null(), "the user unchanged (no title)")
        }),
        c("etag.if-match-patch-stale-412", "PATCH with a stale If-Match is 412", R, |ctx| {
            let (p, _, _) = versioned(ctx)?;
            let body = json!({"schemas": [crate::ctx::PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}).to_string();
            let r = ctx.send_full("PATCH", &p, Some(&body), &[("if-match", STALE)], None)?;
            ctx.status(&r, &[412], "")
        }),
        c("etag.if-match-patch-current", "PATCH with If-Match of the current version succeeds", R, |ctx| {
            let (p, _, tag) = versioned(ctx)?;
            let body = json!({"schemas": [crate::ctx::PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}).to_string();
            let r = ctx.send_full("PATCH", &p, Some(&body), &[("if-match", &tag)], None)?;
            ctx.status(&r, &[200, 204], "")
        }),
        c("etag.if-match-delete-stale-412", "DELETE with a stale If-Match is 412 and keeps the resource", R, |ctx| {
            let (p, _, _) = versioned(ctx)?;
            let r = ctx.send_full("DELETE", &p, None, &[("if-match", STALE)], None)?;
            ctx.status(&r, &[412], "")?;
            let r = ctx.get(&p)?;
            ctx.status(&r, &[200], "the user still exists")
        }),
    ]
    .into_iter()
    .map(|c| c.needs(Feature::Etag))
    .collect()
}
