//! Routing of Graph requests (and `$batch` items) to the emulated directory.

use std::collections::{BTreeSet, HashMap};

use axum::http::HeaderMap;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use super::{DUP_MEMBER, DUP_ROLE, MISSING_MEMBER, role_json, user_json};
use crate::fake_graph::{FakeResponse, FakeState, FaultHit, Shared};

pub(super) fn ref_id(body: &Option<Value>) -> Option<String> {
    let s = body.as_ref()?.get("@odata.id")?.as_str()?;
    s.rsplit('/').next().map(str::to_owned)
}

pub(super) fn select(v: Value, query: &HashMap<String, String>) -> Value {
    let Some(sel) = query.get("$select") else {
        return v;
    };
    let keys: Vec<&str> = sel.split(',').map(str::trim).collect();
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| k == "id" || keys.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

pub(super) fn not_found(id: &str) -> FakeResponse {
    FakeResponse::err(
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

pub(super) fn page(
    items: Vec<Value>,
    query: &HashMap<String, String>,
    base: &str,
    path: &str,
) -> FakeResponse {
    let top: usize = query
        .get("$top")
        .and_then(|t| t.parse().ok())
        .unwrap_or(100)
        .clamp(1, 999);
    let skip: usize = query
        .get("$skiptoken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let mut body = json!({"value": items.iter().skip(skip).take(top).cloned().collect::<Vec<_>>()});
    if skip + top < items.len() {
        let mut q: Vec<String> = query
            .iter()
            .filter(|(k, _)| *k != "$skiptoken")
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        q.sort();
        q.push(format!("$skiptoken={}", skip + top));
        body["@odata.nextLink"] = Value::String(format!("{base}/v1.0{path}?{}", q.join("&")));
    }
    FakeResponse::new(200, Some(body))
}

pub(super) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Parses `prop eq 'v'` (and `startsWith(prop,'v')`) filters on users.
pub(super) fn user_filter(f: &str) -> Option<(String, String, bool)> {
    if let Some(inner) = f
        .strip_prefix("startsWith(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let (p, v) = inner.split_once(',')?;
        return Some((p.trim().into(), v.trim().trim_matches('\'').into(), true));
    }
    let mut parts = f.splitn(3, ' ');
    let (p, op, v) = (parts.next()?, parts.next()?, parts.next()?);
    (op == "eq").then(|| (p.into(), v.trim_matches('\'').replace("''", "'"), false))
}

/// Parses `assignedLicenses/any(x:x/skuId eq <guid>)` into the SKU id.
pub(super) fn license_filter(f: &str) -> Option<String> {
    let inner = f.strip_prefix("assignedLicenses/any(")?.strip_suffix(')')?;
    let (var, cond) = inner.split_once(':')?;
    let sku = cond
        .strip_prefix(&format!("{var}/skuId eq "))?
        .trim()
        .trim_matches('\'');
    Some(sku.to_owned())
}

/// Runs one request through faults, replication delay and the routes, logging it.
/// `Err(())` means the request hangs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dispatch_logged(
    shared: &Shared,
    st: &mut FakeState,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Option<Value>,
    in_batch: bool,
) -> Result<FakeResponse, ()> {
    let mut resp = match st.check_fault(method, path) {
        FaultHit::Hang => {
            st.log(shared.started, method, path, query, body, 0, in_batch);
            return Err(());
        }
        FaultHit::Fail(f) => FakeResponse::fault(&f),
        FaultHit::ApplyThenFail(f) => {
            let _ = route(shared, st, method, path, query, headers, body.clone());
            FakeResponse::fault(&f)
        }
        FaultHit::None => route(shared, st, method, path, query, headers, body.clone()),
    };
    // Graph sends a `request-id` header on every response (batch items included, here)
    let request_id = uuid::Uuid::new_v4().to_string();
    resp.headers.insert("request-id".into(), request_id.clone());
    st.log(
        shared.started,
        method,
        path,
        query,
        body,
        resp.status,
        in_batch,
    );
    st.set_last_request_id(request_id);
    Ok(resp)
}

fn route(
    shared: &Shared,
    st: &mut FakeState,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Option<Value>,
) -> FakeResponse {
    if path == "/$batch" && method == "POST" {
        return batch(shared, st, headers, body);
    }
    let dir = &mut st.dir;
    // replication delay: a new user is invisible to the next N requests that name it
    let body_text = body.as_ref().map(Value::to_string).unwrap_or_default();
    let hidden = dir
        .hidden
        .iter()
        .find(|(id, _)| path.contains(id.as_str()) || body_text.contains(id.as_str()))
        .map(|(id, _)| id.clone());
    if let Some(id) = hidden {
        let left = dir.hidden.get_mut(&id).expect("present");
        *left -= 1;
        if *left == 0 {
            dir.hidden.remove(&id);
        }
        return not_found(&id);
    }
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let base = shared.base_url.as_str();
    match (method, seg.as_slice()) {
        ("POST", ["users"]) => dir.create_user(body),
        ("GET", ["users"]) => {
            let advanced = headers
                .get("consistencylevel")
                .is_some_and(|v| v == "eventual")
                && q.get("$count").is_some_and(|c| c == "true");
            let mut users: Vec<Value> = dir.users.values().map(user_json).collect();
            if let Some(sku) = q.get("$filter").and_then(|f| license_filter(f)) {
                users.retain(|u| {
                    u["assignedLicenses"].as_array().is_some_and(|a| {
                        a.iter().any(|l| {
                            l["skuId"]
                                .as_str()
                                .is_some_and(|s| s.eq_ignore_ascii_case(&sku))
                        })
                    })
                });
            } else if let Some(f) = q.get("$filter") {
                let Some((prop, val, prefix)) = user_filter(f) else {
                    let code = if advanced { 501 } else { 400 };
                    return FakeResponse::err(
                        code,
                        "Request_UnsupportedQuery",
                        "Unsupported or invalid query filter clause specified.",
                    );
                };
                users.retain(|u| {
                    let have = match u.get(&prop) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Bool(b)) => b.to_string(),
                        _ => return false,
                    };
                    if prefix {
                        have.to_lowercase().starts_with(&val.to_lowercase())
                    } else {
                        have.eq_ignore_ascii_case(&val)
                    }
                });
            }
            let users = users.into_iter().map(|u| select(u, &q)).collect();
            page(users, &q, base, path)
        }
        (m, ["users", key, rest @ ..]) => {
            let Some(id) = dir.find_user(key) else {
                return not_found(key);
            };
            dir.user_route(m, &id, rest, &q, body, base, path)
        }
        ("POST", ["groups", gid, "members", "$ref"]) => {
            let Some(g) = dir.groups.get(*gid) else {
                return not_found(gid);
            };
            let _ = g;
            let Some(uid) = ref_id(&body) else {
                return FakeResponse::err(400, "Request_BadRequest", "Missing @odata.id.");
            };
            if !dir.users.contains_key(&uid) {
                return not_found(&uid);
            }
            let g = dir.groups.get_mut(*gid).expect("checked");
            if !g.members.insert(uid) {
                return FakeResponse::err(400, "Request_BadRequest", DUP_MEMBER);
            }
            FakeResponse::new(204, None)
        }
        ("DELETE", ["groups", gid, "members", uid, "$ref"]) => {
            let Some(g) = dir.groups.get_mut(*gid) else {
                return not_found(gid);
            };
            if g.members.remove(*uid) {
                FakeResponse::new(204, None)
            } else {
                FakeResponse::err(404, "Request_ResourceNotFound", MISSING_MEMBER)
            }
        }
        ("DELETE", ["groups", _, "members", _]) => FakeResponse::err(
            400,
            "Request_BadRequest",
            "fake: DELETE of a member without /$ref would delete the object",
        ),
        ("GET", ["groups", gid, list @ ..])
            if matches!(
                list,
                ["members"] | ["members", "microsoft.graph.user"] | ["owners"]
            ) =>
        {
            let Some(g) = dir.groups.get(*gid) else {
                return not_found(gid);
            };
            let ids = if list[0] == "owners" {
                &g.owners
            } else {
                &g.members
            };
            let items = ids
                .iter()
                .filter_map(|id| dir.user(id))
                .map(|mut u| {
                    u["@odata.type"] = json!("#microsoft.graph.user");
                    select(u, &q)
                })
                .collect();
            page(items, &q, base, path)
        }
        ("GET", ["groups", gid]) => match dir.groups.get(*gid) {
            Some(g) => FakeResponse::new(200, Some(json!({"id": gid, "displayName": g.name}))),
            None => not_found(gid),
        },
        ("GET", ["subscribedSkus"]) => {
            FakeResponse::new(200, Some(json!({"value": dir.skus_json()})))
        }
        ("GET", ["roleManagement", "directory", "roleAssignments"]) => {
            let filter = |prop: &str| {
                q.get("$filter")
                    .and_then(|f| f.strip_prefix(prop))
                    .and_then(|f| f.strip_prefix(" eq "))
                    .map(|v| v.trim_matches('\'').to_owned())
            };
            let principal = filter("principalId");
            let definition = filter("roleDefinitionId");
            let items = dir
                .roles
                .iter()
                .filter(|(_, r)| principal.as_ref().is_none_or(|p| &r.principal == p))
                .filter(|(_, r)| {
                    definition
                        .as_ref()
                        .is_none_or(|d| r.definition.eq_ignore_ascii_case(d))
                })
                .map(|(id, r)| role_json(id, r))
                .collect();
            page(items, &q, base, path)
        }
        ("POST", ["roleManagement", "directory", "roleAssignments"]) => {
            let b = body.unwrap_or_default();
            let (Some(def), Some(principal)) =
                (b["roleDefinitionId"].as_str(), b["principalId"].as_str())
            else {
                return FakeResponse::err(
                    400,
                    "Request_BadRequest",
                    "roleDefinitionId and principalId are required.",
                );
            };
            let scope = b["directoryScopeId"].as_str().unwrap_or("/");
            if !dir.users.contains_key(principal) {
                return not_found(principal);
            }
            if dir
                .roles
                .values()
                .any(|r| r.definition == def && r.principal == principal && r.scope == scope)
            {
                return FakeResponse::err(400, "Request_BadRequest", DUP_ROLE);
            }
            let id = dir.assign_role(principal, def, scope);
            let mut v = role_json(&id, &dir.roles[&id]);
            v["@odata.context"] = json!(format!(
                "{base}/v1.0/$metadata#roleManagement/directory/roleAssignments/$entity"
            ));
            FakeResponse::new(201, Some(v))
        }
        ("DELETE", ["roleManagement", "directory", "roleAssignments", id]) => {
            match dir.roles.remove(*id) {
                Some(_) => FakeResponse::new(204, None),
                None => not_found(id),
            }
        }
        _ => FakeResponse::err(
            400,
            "Request_BadRequest",
            &format!("fake: unsupported {method} {path}"),
        ),
    }
}

fn batch(
    shared: &Shared,
    st: &mut FakeState,
    headers: &HeaderMap,
    body: Option<Value>,
) -> FakeResponse {
    let Some(reqs) = body
        .as_ref()
        .and_then(|b| b["requests"].as_array())
        .cloned()
    else {
        return FakeResponse::err(400, "BadRequest", "Invalid batch payload format.");
    };
    if reqs.len() > 20 {
        return FakeResponse::err(
            400,
            "BadRequest",
            "The number of batch requests exceeds 20.",
        );
    }
    let ids: BTreeSet<&str> = reqs.iter().filter_map(|r| r["id"].as_str()).collect();
    if ids.len() != reqs.len() {
        return FakeResponse::err(400, "BadRequest", "Batch request ids must be unique.");
    }
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut out = Vec::new();
    for r in &reqs {
        let id = r["id"].as_str().unwrap_or_default().to_owned();
        let method = r["method"].as_str().unwrap_or("GET").to_ascii_uppercase();
        let url = r["url"].as_str().unwrap_or_default();
        let has_ct = r["headers"]
            .as_object()
            .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("content-type")));
        let item_body = r.get("body").filter(|b| !b.is_null()).cloned();
        let failed_dep = r["dependsOn"].as_array().is_some_and(|d| {
            d.iter().any(|x| {
                x.as_str()
                    .is_none_or(|x| statuses.get(x).is_none_or(|s| !(200..300).contains(s)))
            })
        });
        let resp = if !url.starts_with('/') {
            FakeResponse::err(400, "BadRequest", "Batch request urls must be relative.")
        } else if item_body.is_some() && !has_ct {
            FakeResponse::err(
                400,
                "BadRequest",
                "Content-Type header is required for a request with a body.",
            )
        } else if failed_dep {
            FakeResponse::err(424, "FailedDependency", "A dependency failed.")
        } else {
            let (p, q) = url.split_once('?').unwrap_or((url, ""));
            dispatch_logged(shared, st, &method, p, q, headers, item_body, true)
                .unwrap_or_else(|()| FakeResponse::err(504, "gatewayTimeout", "Gateway timeout."))
        };
        statuses.insert(id.clone(), resp.status);
        let mut item = json!({"id": id, "status": resp.status, "headers": resp.headers});
        if let Some(b) = resp.body {
            item["body"] = b;
        }
        out.push(item);
    }
    out.shuffle(&mut rand::thread_rng());
    FakeResponse::new(200, Some(json!({"responses": out})))
}
