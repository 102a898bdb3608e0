//! Discovery documents (RFC 7643 §5–§7, RFC 7644 §4) and their consistency with behaviour.

use serde_json::{Value, json};

use super::{Check, Feature, c};
use crate::ctx::{Ctx, ENTERPRISE, GROUP, LIST, USER, attr, id_of, resources};

const SPC: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

fn has_schema(v: &Value, urn: &str) -> bool {
    attr(v, "schemas").as_array().is_some_and(|a| {
        a.iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
    })
}

fn spc(ctx: &mut Ctx) -> Result<Value, crate::ctx::Stop> {
    ctx.fetch("/ServiceProviderConfig")
}

fn schema_ids(ctx: &mut Ctx) -> Result<Vec<String>, crate::ctx::Stop> {
    let l = ctx.list("/Schemas")?;
    Ok(resources(&l).iter().map(id_of).collect())
}

fn schema_attr(schema: &Value, name: &str) -> Value {
    attr(schema, "attributes")
        .as_array()
        .and_then(|a| {
            a.iter().find(|x| {
                attr(x, "name")
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        })
        .cloned()
        .unwrap_or(Value::Null)
}

pub(super) fn checks() -> Vec<Check> {
    vec![
        c("discovery.spc.valid", "ServiceProviderConfig is a valid document", "RFC 7643 §5", |ctx| {
            let v = spc(ctx)?;
            ctx.ensure(has_schema(&v, SPC), format!("\"schemas\" containing {SPC}"))?;
            for f in ["patch", "bulk", "filter", "changePassword", "sort", "etag"] {
                ctx.ensure(attr(attr(&v, f), "supported").is_boolean(), format!("{f}.supported as a JSON boolean"))?;
            }
            ctx.ensure(attr(&v, "authenticationSchemes").is_array(), "authenticationSchemes as an array")
        }),
        c("discovery.spc.content-type", "ServiceProviderConfig is served as application/scim+json", "RFC 7644 §3.1", |ctx| {
            let r = ctx.get("/ServiceProviderConfig")?;
            ctx.status(&r, &[200], "")?;
            let ct = r.header("content-type").unwrap_or_default().to_ascii_lowercase();
            ctx.ensure(ct.starts_with("application/scim+json") || ct.starts_with("application/json"), "Content-Type application/scim+json")
        }),
        c("discovery.spc.auth-schemes", "Every authentication scheme has type, name and description", "RFC 7643 §5", |ctx| {
            let v = spc(ctx)?;
            for s in attr(&v, "authenticationSchemes").as_array().cloned().unwrap_or_default() {
                for k in ["type", "name", "description"] {
                    ctx.ensure(attr(&s, k).is_string(), format!("authenticationSchemes[].{k} as a string"))?;
                }
            }
            Ok(())
        }),
        c("discovery.spc.bulk-limits", "A supported bulk declares integer maxOperations and maxPayloadSize", "RFC 7643 §5", |ctx| {
            let v = spc(ctx)?;
            let b = attr(&v, "bulk");
            if attr(b, "supported") != &json!(true) {
                return Err(crate::ctx::Stop::Skip("ServiceProviderConfig bulk.supported=false".into()));
            }
            ctx.ensure(attr(b, "maxOperations").is_u64() && attr(b, "maxPayloadSize").is_u64(), "bulk.maxOperations and bulk.maxPayloadSize as integers")
        }),
        c("discovery.spc.filter-maxresults", "A supported filter declares an integer maxResults", "RFC 7643 §5", |ctx| {
            let v = spc(ctx)?;
            let f = attr(&v, "filter");
            if attr(f, "supported") != &json!(true) {
                return Err(crate::ctx::Stop::Skip("ServiceProviderConfig filter.supported=false".into()));
            }
            ctx.ensure(attr(f, "maxResults").is_u64(), "filter.maxResults as an integer")
        }),
        c("discovery.schemas.list", "GET /Schemas is a ListResponse holding the User and Group schemas", "RFC 7644 §4", |ctx| {
            let l = ctx.list("/Schemas")?;
            ctx.ensure(has_schema(&l, LIST), format!("\"schemas\": [\"{LIST}\"]"))?;
            let ids: Vec<String> = resources(&l).iter().map(id_of).collect();
            ctx.ensure(ids.iter().any(|i| i == USER) && ids.iter().any(|i| i == GROUP), format!("Resources with ids {USER} and {GROUP}"))
        }),
        c("discovery.schemas.user", "GET /Schemas/<User URN> returns the User schema", "RFC 7644 §4", |ctx| {
            let v = ctx.fetch(&format!("/Schemas/{USER}"))?;
            ctx.ensure(id_of(&v) == USER, format!("\"id\": \"{USER}\""))?;
            ctx.ensure(!schema_attr(&v, "userName").is_null(), "an attribute named userName")
        }),
        c("discovery.schemas.group", "GET /Schemas/<Group URN> returns the Group schema", "RFC 7644 §4", |ctx| {
            let v = ctx.fetch(&format!("/Schemas/{GROUP}"))?;
            ctx.ensure(id_of(&v) == GROUP, format!("\"id\": \"{GROUP}\""))?;
            ctx.ensure(!schema_attr(&v, "displayName").is_null() && !schema_attr(&v, "members").is_null(), "attributes displayName and members")
        }),
        c("discovery.schemas.username-characteristics", "userName is a required, server-unique, case-insensitive string", "RFC 7643 §4.1.1", |ctx| {
            let v = ctx.fetch(&format!("/Schemas/{USER}"))?;
            let a = schema_attr(&v, "userName");
            ctx.ensure(
                attr(&a, "type") == "string" && attr(&a, "required") == &json!(true) && attr(&a, "caseExact") == &json!(false) && attr(&a, "uniqueness") == "server",
                "userName: type string, required true, caseExact false, uniqueness server",
            )
        }),
        c("discovery.schemas.attribute-definitions", "Every User attribute has name, type and multiValued", "RFC 7643 §7", |ctx| {
            let v = ctx.fetch(&format!("/Schemas/{USER}"))?;
            let attrs = attr(&v, "attributes").as_array().cloned().unwrap_or_default();
            ctx.ensure(!attrs.is_empty(), "a non-empty attributes list")?;
            for a in attrs {
                ctx.ensure(attr(&a, "name").is_string() && attr(&a, "type").is_string() && attr(&a, "multiValued").is_boolean(), "name, type (string) and multiValued (boolean) on every attribute")?;
            }
            Ok(())
        }),
        c("discovery.schemas.unknown-404", "GET /Schemas/<unknown URN> is 404", "RFC 7644 §3.12", |ctx| {
            let r = ctx.get("/Schemas/urn:example:does-not-exist")?;
            ctx.status(&r, &[404], "unknown schema")
        }),
        c("discovery.resourcetypes.list", "GET /ResourceTypes lists User and Group with endpoints and schemas", "RFC 7643 §6", |ctx| {
            let l = ctx.list("/ResourceTypes")?;
            let res = resources(&l);
            let find = |n: &str| res.iter().find(|r| attr(r, "name") == n).cloned();
            let u = find("User");
            let g = find("Group");
            ctx.ensure(u.is_some() && g.is_some(), "resource types named User and Group")?;
            let (u, g) = (u.unwrap_or_default(), g.unwrap_or_default());
            ctx.ensure(attr(&u, "endpoint") == "/Users" && attr(&u, "schema") == USER, format!("User: endpoint /Users, schema {USER}"))?;
            ctx.ensure(attr(&g, "endpoint") == "/Groups" && attr(&g, "schema") == GROUP, format!("Group: endpoint /Groups, schema {GROUP}"))
        }),
        c("discovery.resourcetypes.user", "GET /ResourceTypes/User returns the User resource type", "RFC 7644 §4", |ctx| {
            let v = ctx.fetch("/ResourceTypes/User")?;
            ctx.ensure(attr(&v, "endpoint") == "/Users", "\"endpoint\": \"/Users\"")
        }),
        c("discovery.resourcetypes.group", "GET /ResourceTypes/Group returns the Group resource type", "RFC 7644 §4", |ctx| {
            let v = ctx.fetch("/ResourceTypes/Group")?;
            ctx.ensure(attr(&v, "endpoint") == "/Groups", "\"endpoint\": \"/Groups\"")
        }),
        c("discovery.resourcetypes.schemas-resolvable", "Every schema and extension a resource type names is served by /Schemas", "RFC 7643 §6", |ctx| {
            let l = ctx.list("/ResourceTypes")?;
            let ids = schema_ids(ctx)?;
            for rt in resources(&l) {
                let mut wanted = vec![attr(&rt, "schema").as_str().unwrap_or_default().to_string()];
                for e in attr(&rt, "schemaExtensions").as_array().cloned().unwrap_or_default() {
                    wanted.push(attr(&e, "schema").as_str().unwrap_or_default().to_string());
                }
                for w in wanted {
                    ctx.ensure(ids.contains(&w), format!("/Schemas to contain {w} (named by resource type {})", attr(&rt, "name")))?;
                }
            }
            Ok(())
        }),
        c("discovery.schemas.enterprise", "A declared enterprise extension is served by /Schemas/<URN>", "RFC 7643 §4.3", |ctx| {
            let u = ctx.fetch("/ResourceTypes/User")?;
            let declared = attr(&u, "schemaExtensions").as_array().is_some_and(|a| a.iter().any(|e| attr(e, "schema") == ENTERPRISE));
            if !declared {
                return Err(crate::ctx::Stop::Skip("the User resource type declares no enterprise extension".into()));
            }
            let v = ctx.fetch(&format!("/Schemas/{ENTERPRISE}"))?;
            ctx.ensure(id_of(&v) == ENTERPRISE, format!("\"id\": \"{ENTERPRISE}\""))
        }),
        c("discovery.consistency.patch", "Declared PATCH support works", "RFC 7643 §5", |ctx| {
            let u = ctx.create_user("spcpatch", json!({}))?;
            let r = ctx.patch(&format!("/Users/{}", id_of(&u)), json!([{"op": "replace", "path": "displayName", "value": "Patched"}]))?;
            ctx.status(&r, &[200, 204], "patch.supported=true, so PATCH must work")
        })
        .needs(Feature::Patch),
        c("discovery.consistency.filter", "Declared filter support works", "RFC 7643 §5", |ctx| {
            let u = ctx.create_user("spcfilter", json!({}))?;
            let name = attr(&u, "userName").as_str().unwrap_or_default().to_string();
            let l = ctx.filter("/Users", &format!("userName eq \"{name}\""), "")?;
            ctx.ensure(l["totalResults"] == 1, "filter.supported=true: userName eq finds exactly the created user")
        })
        .needs(Feature::Filter),
        c("discovery.consistency.sort", "Declared sort support works", "RFC 7643 §5", |ctx| {
            let r = ctx.get("/Users?sortBy=userName&count=5")?;
            ctx.status(&r, &[200], "sort.supported=true, so sortBy must be accepted")
        })
        .needs(Feature::Sort),
        c("discovery.consistency.etag", "Declared ETag support yields versions", "RFC 7643 §5, RFC 7644 §3.14", |ctx| {
            let u = ctx.create_user("spcetag", json!({}))?;
            let r = ctx.get(&format!("/Users/{}", id_of(&u)))?;
            ctx.status(&r, &[200], "")?;
            let has = r.header("etag").is_some() || r.json.as_ref().is_some_and(|j| attr(attr(j, "meta"), "version").is_string());
            ctx.ensure(has, "etag.supported=true: an ETag header or meta.version")
        })
        .needs(Feature::Etag),
        c("discovery.consistency.bulk", "Declared Bulk support accepts a BulkRequest", "RFC 7643 §5, RFC 7644 §3.7", |ctx| {
            let body = ctx.user_body("spcbulk", json!({}));
            let req = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "b1", "data": body}]});
            let r = ctx.post("/Bulk", &req)?;
            if let Some(loc) = r.json.as_ref().and_then(|j| j["Operations"][0]["location"].as_str()) {
                let loc = loc.to_string();
                ctx.track(loc);
            }
            ctx.status(&r, &[200], "bulk.supported=true, so /Bulk must answer 200")
        })
        .needs(Feature::Bulk),
        c("discovery.consistency.change-password", "Declared changePassword support accepts a password replace", "RFC 7643 §5", |ctx| {
            let u = ctx.create_user("spcpwd", json!({"password": "Initial-Pa55word!"}))?;
            let r = ctx.patch(&format!("/Users/{}", id_of(&u)), json!([{"op": "replace", "path": "password", "value": "Changed-Pa55word!"}]))?;
            ctx.status(&r, &[200, 204], "changePassword.supported=true, so replacing password must work")
        })
        .needs(Feature::ChangePassword),
    ]
}
