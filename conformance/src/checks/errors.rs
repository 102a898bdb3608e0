//! Error responses: bodies, status codes and content types (RFC 7644 §3.12, RFC 6750 §3).

use serde_json::json;

use super::{Check, c};
use crate::ctx::{Ctx, ERROR, Res, Resp, USER, attr, id_of};

const R: &str = "RFC 7644 §3.12";

/// An Error body: Error schema, `status` as a string equal to the HTTP status.
fn error_body(ctx: &Ctx, r: &Resp) -> Res {
    let v = r.j();
    ctx.ensure(
        attr(v, "schemas")
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s == ERROR)),
        format!("an Error body with \"schemas\": [\"{ERROR}\"]"),
    )?;
    ctx.ensure(
        attr(v, "status") == r.status.to_string().as_str(),
        format!(
            "\"status\": \"{}\" (a string equal to the HTTP status)",
            r.status
        ),
    )
}

/// Skips the authentication checks when the run has no token (an open server).
fn needs_token(ctx: &Ctx) -> Res {
    if ctx.has_token() {
        Ok(())
    } else {
        Err(crate::ctx::Stop::Skip(
            "no --token given: the server is assumed to run without authentication".into(),
        ))
    }
}

/// `GET /Users?count=1` with a bearer token the server never issued.
fn get_with_wrong_token(ctx: &mut Ctx) -> Result<Resp, crate::ctx::Stop> {
    ctx.send_full(
        "GET",
        "/Users?count=1",
        None,
        &[],
        Some("Bearer cf-wrong-token-0000"),
    )
}

fn post_raw(ctx: &mut Ctx, body: &str) -> Result<Resp, crate::ctx::Stop> {
    let r = ctx.send_full("POST", "/Users", Some(body), &[], None)?;
    if r.status < 300
        && let Some(id) = r.json.as_ref().map(id_of).filter(|i| !i.is_empty())
    {
        ctx.track(format!("/Users/{id}"));
    }
    Ok(r)
}

pub(super) fn checks() -> Vec<Check> {
    vec![
        c(
            "errors.not-found.body",
            "A 404 carries an Error body with status \"404\"",
            R,
            |ctx| {
                let r = ctx.get("/Users/cf-does-not-exist-0000")?;
                ctx.status(&r, &[404], "")?;
                error_body(ctx, &r)
            },
        ),
        c(
            "errors.not-found.content-type",
            "Errors are served as application/scim+json",
            "RFC 7644 §3.12, §3.1",
            |ctx| {
                let r = ctx.get("/Users/cf-does-not-exist-0000")?;
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
            "errors.auth.missing-token-401",
            "A request without credentials is 401",
            "RFC 7644 §2, RFC 6750 §3.1",
            |ctx| {
                needs_token(ctx)?;
                let r = ctx.send_full("GET", "/Users?count=1", None, &[], Some(""))?;
                ctx.status(&r, &[401], "")
            },
        ),
        c(
            "errors.auth.bad-token-401",
            "A request with a wrong bearer token is 401",
            "RFC 7644 §2, RFC 6750 §3.1",
            |ctx| {
                needs_token(ctx)?;
                let r = get_with_wrong_token(ctx)?;
                ctx.status(&r, &[401], "")
            },
        ),
        c(
            "errors.auth.www-authenticate",
            "A 401 carries a WWW-Authenticate challenge",
            "RFC 6750 §3, RFC 7235 §3.1",
            |ctx| {
                needs_token(ctx)?;
                let r = get_with_wrong_token(ctx)?;
                ctx.status(&r, &[401], "")?;
                ctx.ensure(
                    r.header("www-authenticate").is_some(),
                    "a WWW-Authenticate header",
                )
            },
        ),
        c(
            "errors.auth.body",
            "A 401 carries an Error body",
            R,
            |ctx| {
                needs_token(ctx)?;
                let r = ctx.send_full("GET", "/Users?count=1", None, &[], Some(""))?;
                ctx.status(&r, &[401], "")?;
                error_body(ctx, &r)
            },
        ),
        c(
            "errors.json.malformed-400",
            "A malformed JSON body is 400 invalidSyntax",
            R,
            |ctx| {
                let r = post_raw(
                    ctx,
                    "{\"schemas\": [\"urn:ietf:params:scim:schemas:core:2.0:User\"], \"userName\": ",
                )?;
                ctx.status(&r, &[400], "")?;
                ctx.ensure(
                    attr(r.j(), "scimType") == "invalidSyntax",
                    "scimType \"invalidSyntax\"",
                )
            },
        ),
        c(
            "errors.json.not-object-400",
            "A JSON array as resource body is 400",
            R,
            |ctx| {
                let r = post_raw(ctx, "[]")?;
                ctx.status(&r, &[400], "")?;
                error_body(ctx, &r)
            },
        ),
        c(
            "errors.type-mismatch-400",
            "A value of the wrong type is 400",
            "RFC 7644 §3.12 (invalidValue)",
            |ctx| {
                let name = ctx.unique("typemismatch");
                let r = post_raw(
                    ctx,
                    &json!({"schemas": [USER], "userName": name, "active": "not-a-boolean"})
                        .to_string(),
                )?;
                ctx.status(&r, &[400], "active \"not-a-boolean\" refused")
            },
        ),
        c(
            "errors.uniqueness.body",
            "A 409 uniqueness error carries the Error body",
            R,
            |ctx| {
                let u = ctx.create_user("err409", json!({}))?;
                let r = post_raw(
                    ctx,
                    &json!({"schemas": [USER], "userName": attr(&u, "userName")}).to_string(),
                )?;
                ctx.status(&r, &[409], "")?;
                error_body(ctx, &r)
            },
        ),
        c(
            "errors.invalid-filter.body",
            "A 400 invalidFilter carries the Error body",
            R,
            |ctx| {
                let r = ctx.get(&format!("/Users?filter={}", Ctx::enc("userName eq")))?;
                ctx.status(&r, &[400], "")?;
                error_body(ctx, &r)
            },
        ),
        c(
            "errors.unknown-endpoint-404",
            "An unknown endpoint is 404",
            R,
            |ctx| {
                let r = ctx.get("/CfNoSuchEndpoint")?;
                ctx.status(&r, &[404], "")
            },
        ),
        c(
            "errors.missing-username-body",
            "A 400 for a missing required attribute carries the Error body",
            R,
            |ctx| {
                let r = post_raw(
                    ctx,
                    &json!({"schemas": [USER], "title": "no userName"}).to_string(),
                )?;
                ctx.status(&r, &[400], "")?;
                error_body(ctx, &r)
            },
        ),
    ]
}
