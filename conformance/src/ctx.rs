//! The context a check runs in: an HTTP client that records the last exchange, the
//! server's declared features, unique names, and the cleanup registry.

use std::collections::HashMap;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use crate::config::RunConfig;
use crate::report::{Failure, RequestRecord, excerpt};

/// Why a check stopped early: a failure or a reason to skip.
#[derive(Debug, Clone)]
pub enum Stop {
    /// The check failed.
    Fail(Failure),
    /// The check does not apply.
    Skip(String),
}

/// What a check body returns.
pub type Res = std::result::Result<(), Stop>;

/// After this many transport errors in a row (timeouts, refused connections) the run
/// stops sending requests, so a dead server fails the run in seconds, not hours.
const GIVE_UP_AFTER: u32 = 8;

/// SCIM JSON media type (RFC 7644 §3.1).
pub const SCIM_JSON: &str = "application/scim+json";
/// Core User schema URN.
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema URN.
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise User extension URN.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// PatchOp message URN.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// ListResponse message URN.
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Error message URN.
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// How many times a 429 answer is retried before it counts as the answer.
const MAX_THROTTLED_RETRIES: u32 = 5;
/// The longest `Retry-After` the runner waits for, in seconds.
const MAX_RETRY_AFTER_SECONDS: f64 = 10.0;

/// An HTTP response as seen by a check.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Response headers (names lowercase).
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub text: String,
    /// Body parsed as JSON, when it is JSON.
    pub json: Option<Value>,
}

impl Resp {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
    /// JSON body or `Null`.
    pub fn j(&self) -> &Value {
        static NULL: Value = Value::Null;
        self.json.as_ref().unwrap_or(&NULL)
    }
}

/// The state a check runs with.
pub struct Ctx {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    token: String,
    /// Short random id of this run; every created name starts with `cf-<run_id>-`.
    pub run_id: String,
    seq: u32,
    spc: Option<Option<Value>>,
    last_req: Option<RequestRecord>,
    last_resp: Option<String>,
    check_created: Vec<String>,
    run_created: Vec<String>,
    transport_errors: u32,
    /// Lazily created fixtures shared by several checks (deleted at the end of the run).
    pub fixtures: HashMap<&'static str, Value>,
}

impl Ctx {
    /// Builds a context for `config`.
    pub fn new(config: &RunConfig) -> crate::Result<Self> {
        let base = config.base_url.trim().trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&base).map_err(|e| crate::Error::BaseUrl {
            url: config.base_url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(crate::Error::BaseUrl {
                url: config.base_url.clone(),
                reason: "scheme must be http or https".into(),
            });
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::Error::BaseUrl {
                url: config.base_url.clone(),
                reason: format!("cannot start an I/O runtime: {e}"),
            })?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| crate::Error::BaseUrl {
                url: config.base_url.clone(),
                reason: e.to_string(),
            })?;
        let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        Ok(Self {
            rt,
            http,
            base,
            token: config.token.clone(),
            run_id,
            seq: 0,
            spc: None,
            last_req: None,
            last_resp: None,
            check_created: Vec::new(),
            run_created: Vec::new(),
            transport_errors: 0,
            fixtures: HashMap::new(),
        })
    }

    /// Whether a bearer token was configured.
    pub fn has_token(&self) -> bool {
        !self.token.is_empty()
    }

    /// The base URL without trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Absolute URL of `path` (`/Users?...`), or `path` itself when already absolute.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    /// A new unique name `cf-<run>-<seq>-<label>`.
    pub fn unique(&mut self, label: &str) -> String {
        self.seq += 1;
        format!("cf-{}-{:03}-{}", self.run_id, self.seq, label)
    }

    /// Sends a request. `auth`: `Some(value)` for a custom Authorization header,
    /// `Some("")` for none, `None` for the configured bearer token. A `content-type`
    /// in `headers` replaces the default `application/scim+json`.
    pub fn send_full(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
        auth: Option<&str>,
    ) -> Result<Resp, Stop> {
        let url = self.url(path);
        self.last_req = Some(RequestRecord {
            method: method.to_string(),
            url: url.clone(),
            body: body.map(str::to_string),
        });
        self.last_resp = None;
        if self.transport_errors >= GIVE_UP_AFTER {
            self.last_resp = Some(format!(
                "not sent: the server stopped answering ({GIVE_UP_AFTER} transport errors in a row)"
            ));
            return Err(self.fail("an HTTP response"));
        }
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| self.fail(format!("valid method: {e}")))?;
        let mut rb = self.http.request(m, &url);
        match auth {
            None if self.token.is_empty() => {}
            None => rb = rb.header("authorization", format!("Bearer {}", self.token)),
            Some("") => {}
            Some(v) => rb = rb.header("authorization", v),
        }
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("accept"))
        {
            rb = rb.header("accept", SCIM_JSON);
        }
        if let Some(b) = body {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                rb = rb.header("content-type", SCIM_JSON);
            }
            rb = rb.body(b.to_string());
        }
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
        {
            rb = rb.header("user-agent", "scim-conformance/0.1");
        }
        // A header given with an empty value is omitted (e.g. to send no User-Agent).
        for (k, v) in headers.iter().filter(|(_, v)| !v.is_empty()) {
            rb = rb.header(*k, *v);
        }
        // A throttled request (429) is sent again after `Retry-After`, as Entra and Okta do, a
        // bounded number of times: the runner checks behaviour, not the server's rate limit.
        let mut throttled = 0;
        let result = loop {
            let Some(attempt) = rb.try_clone() else {
                break self.rt.block_on(Self::exchange(rb));
            };
            let result = self.rt.block_on(Self::exchange(attempt));
            match &result {
                Ok((429, headers, _)) if throttled < MAX_THROTTLED_RETRIES => {
                    throttled += 1;
                    let wait = headers
                        .iter()
                        .find(|(k, _)| k == "retry-after")
                        .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .unwrap_or(1.0)
                        .min(MAX_RETRY_AFTER_SECONDS);
                    std::thread::sleep(std::time::Duration::from_secs_f64(wait));
                }
                _ => break result,
            }
        };
        match result {
            Ok((status, headers, text)) => {
                self.transport_errors = 0;
                let json = serde_json::from_str(&text).ok();
                self.last_resp = Some(format!("{status} {}", excerpt(&text, 400)));
                Ok(Resp {
                    status,
                    headers,
                    text,
                    json,
                })
            }
            Err(e) => {
                self.transport_errors += 1;
                self.last_resp = Some(format!("no response: {e}"));
                Err(self.fail("an HTTP response"))
            }
        }
    }

    /// One HTTP exchange: status, lower-cased headers and body text.
    async fn exchange(
        rb: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<(String, String)>, String), reqwest::Error> {
        let resp = rb.send().await?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let text = resp.text().await?;
        Ok((status, headers, text))
    }

    /// Sends `method path` with an optional JSON body and the configured token.
    pub fn send(&mut self, method: &str, path: &str, body: Option<&Value>) -> Result<Resp, Stop> {
        let text = body.map(|b| b.to_string());
        self.send_full(method, path, text.as_deref(), &[], None)
    }
    /// `GET path`.
    pub fn get(&mut self, path: &str) -> Result<Resp, Stop> {
        self.send("GET", path, None)
    }
    /// `POST path body`.
    pub fn post(&mut self, path: &str, body: &Value) -> Result<Resp, Stop> {
        self.send("POST", path, Some(body))
    }
    /// `PUT path body`.
    pub fn put(&mut self, path: &str, body: &Value) -> Result<Resp, Stop> {
        self.send("PUT", path, Some(body))
    }
    /// `PATCH path` with a PatchOp message of `ops`.
    pub fn patch(&mut self, path: &str, ops: Value) -> Result<Resp, Stop> {
        self.send(
            "PATCH",
            path,
            Some(&json!({"schemas": [PATCH_OP], "Operations": ops})),
        )
    }
    /// `DELETE path`.
    pub fn delete(&mut self, path: &str) -> Result<Resp, Stop> {
        self.send("DELETE", path, None)
    }

    /// A failure with the last request and response as context.
    pub fn fail(&self, expected: impl Into<String>) -> Stop {
        Stop::Fail(Failure {
            request: self.last_req.clone(),
            expected: expected.into(),
            actual: self
                .last_resp
                .clone()
                .unwrap_or_else(|| "no request sent".into()),
        })
    }
    /// A failure with the last request and an explicit observation.
    pub fn fail_with(&self, expected: impl Into<String>, actual: impl Into<String>) -> Stop {
        let mut actual = actual.into();
        if let Some(r) = &self.last_resp {
            actual = format!("{actual}; last response: {r}");
        }
        Stop::Fail(Failure {
            request: self.last_req.clone(),
            expected: expected.into(),
            actual,
        })
    }
    /// Fails with `expected` unless `cond`.
    pub fn ensure(&self, cond: bool, expected: impl Into<String>) -> Res {
        if cond {
            Ok(())
        } else {
            Err(self.fail(expected))
        }
    }
    /// Fails unless the status is one of `allowed`.
    pub fn status(&self, r: &Resp, allowed: &[u16], what: &str) -> Res {
        if allowed.contains(&r.status) {
            Ok(())
        } else {
            let codes: Vec<String> = allowed.iter().map(u16::to_string).collect();
            Err(self.fail(format!(
                "status {}{}{}",
                codes.join(" or "),
                if what.is_empty() { "" } else { ": " },
                what
            )))
        }
    }
    /// The JSON object body of `r`, or a failure.
    pub fn obj(&self, r: &Resp) -> Result<Value, Stop> {
        match &r.json {
            Some(v @ Value::Object(_)) => Ok(v.clone()),
            _ => Err(self.fail("a JSON object body")),
        }
    }

    /// Registers `path` (e.g. `/Users/<id>`) for deletion after the current check.
    pub fn track(&mut self, path: String) {
        self.check_created.push(path);
    }
    /// Moves everything the current check created to the run-wide cleanup list
    /// (used for fixtures shared by several checks).
    pub fn keep_for_run(&mut self) {
        let list = std::mem::take(&mut self.check_created);
        self.run_created.extend(list);
    }
    /// Registers `path` for deletion at the end of the run.
    pub fn track_run(&mut self, path: String) {
        self.run_created.push(path);
    }
    /// Deletes what the current check created (groups first, then users), ignoring errors.
    pub fn cleanup_check(&mut self) {
        let mut list = std::mem::take(&mut self.check_created);
        list.sort_by_key(|p| !p.starts_with("/Groups"));
        for p in list {
            let _ = self.send_full("DELETE", &p, None, &[], None);
        }
    }
    /// Deletes run-wide fixtures.
    pub fn cleanup_run(&mut self) {
        self.check_created = std::mem::take(&mut self.run_created);
        self.cleanup_check();
    }

    /// The ServiceProviderConfig, fetched once (None when unavailable).
    pub fn spc(&mut self) -> Option<Value> {
        if self.spc.is_none() {
            let v = self
                .get("/ServiceProviderConfig")
                .ok()
                .filter(|r| r.status == 200)
                .and_then(|r| r.json);
            self.spc = Some(v);
        }
        self.spc.clone().flatten()
    }
    /// `Some(false)` when the ServiceProviderConfig declares `feature.supported` false.
    pub fn declared(&mut self, feature: &str) -> Option<bool> {
        self.spc().and_then(|s| {
            s.get(feature)
                .and_then(|f| f.get("supported"))
                .and_then(Value::as_bool)
        })
    }
    /// Skips when the server declares `feature` unsupported.
    pub fn require(&mut self, feature: &str) -> Res {
        if self.declared(feature) == Some(false) {
            Err(Stop::Skip(format!(
                "ServiceProviderConfig {feature}.supported=false"
            )))
        } else {
            Ok(())
        }
    }

    /// Percent-encodes a query value.
    pub fn enc(v: &str) -> String {
        utf8_percent_encode(v, NON_ALPHANUMERIC).to_string()
    }

    /// A minimal valid user with a unique userName, merged with `extra`.
    pub fn user_body(&mut self, label: &str, extra: Value) -> Value {
        let name = self.unique(label);
        let mut base = json!({
            "schemas": [USER],
            "userName": name,
            "name": {"givenName": "Conf", "familyName": "Ormance"},
            "displayName": format!("Conf {label}"),
            "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
            "active": true,
        });
        merge(&mut base, extra);
        base
    }

    /// Creates `body` at `/Users` (201 or 200 with an `id`), tracks it, returns the resource.
    pub fn create_raw(&mut self, endpoint: &str, body: &Value) -> Result<Value, Stop> {
        let r = self.post(endpoint, body)?;
        if let Some(id) = r.j().get("id").and_then(Value::as_str)
            && (200..300).contains(&r.status)
        {
            self.track(format!("{endpoint}/{id}"));
        }
        self.status(&r, &[201, 200], &format!("create at {endpoint}"))?;
        let v = self.obj(&r)?;
        self.ensure(
            v.get("id").and_then(Value::as_str).is_some(),
            "the created resource with an \"id\"",
        )?;
        Ok(v)
    }
    /// Creates a user from [`Ctx::user_body`].
    pub fn create_user(&mut self, label: &str, extra: Value) -> Result<Value, Stop> {
        let body = self.user_body(label, extra);
        self.create_raw("/Users", &body)
    }
    /// Creates a group with a unique displayName and the given member ids.
    pub fn create_group(&mut self, label: &str, members: &[&str]) -> Result<Value, Stop> {
        let name = self.unique(label);
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let body = json!({"schemas": [GROUP], "displayName": name, "members": members});
        self.create_raw("/Groups", &body)
    }
    /// GETs `path`, expects 200 and a JSON object.
    pub fn fetch(&mut self, path: &str) -> Result<Value, Stop> {
        let r = self.get(path)?;
        self.status(&r, &[200], "")?;
        self.obj(&r)
    }
    /// GETs a list (`/Users?filter=...`), expects 200 and a ListResponse; returns it.
    pub fn list(&mut self, path: &str) -> Result<Value, Stop> {
        let v = self.fetch(path)?;
        self.ensure(
            v.get("totalResults").map(Value::is_u64) == Some(true),
            "a ListResponse with integer totalResults",
        )?;
        let total = v["totalResults"].as_u64().unwrap_or(0);
        let res_ok = match v.get("Resources") {
            Some(Value::Array(_)) => true,
            None | Some(Value::Null) => total == 0,
            _ => false,
        };
        self.ensure(res_ok, "a ListResponse with a \"Resources\" array")?;
        Ok(v)
    }
    /// GETs `/<endpoint>?filter=<filter>` (plus `extra` query) and returns the ListResponse.
    pub fn filter(&mut self, endpoint: &str, filter: &str, extra: &str) -> Result<Value, Stop> {
        let path = format!("{endpoint}?filter={}{extra}", Self::enc(filter));
        self.list(&path)
    }
}

/// Resources of a ListResponse (empty when absent).
pub fn resources(list: &Value) -> Vec<Value> {
    list.get("Resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}
/// Ids of the resources of a ListResponse.
pub fn ids(list: &Value) -> Vec<String> {
    resources(list)
        .iter()
        .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_string))
        .collect()
}
/// The `id` of a resource ("" if absent).
pub fn id_of(v: &Value) -> String {
    v.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
/// Looks up an attribute case-insensitively (RFC 7643 §2.1), returning `Null` if absent.
pub fn attr<'a>(v: &'a Value, name: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    match v {
        Value::Object(m) => m
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .unwrap_or(&NULL),
        _ => &NULL,
    }
}
/// Follows a dotted path of case-insensitive attribute names.
pub fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |cur, seg| attr(cur, seg))
}
/// Values of `attr[*].value` for a multi-valued attribute (e.g. member ids).
pub fn values_of(v: &Value, name: &str) -> Vec<String> {
    attr(v, name)
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| attr(m, "value").as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
/// The `value` of the element of `emails` (or another multi-valued attribute) with `type`.
pub fn typed_value(v: &Value, name: &str, ty: &str) -> Option<String> {
    attr(v, name)
        .as_array()?
        .iter()
        .find(|e| attr(e, "type").as_str() == Some(ty))
        .and_then(|e| attr(e, "value").as_str().map(str::to_string))
}
/// Whether `v` is "absent" in a SCIM sense: missing, null, empty string or empty array.
pub fn absent(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}
/// Deep-merges `extra` into `base` (objects merged, other values replaced; `null` removes).
pub fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                if v.is_null() {
                    b.remove(&k);
                } else if let Some(slot) = b.get_mut(&k) {
                    if slot.is_object() && v.is_object() {
                        merge(slot, v);
                    } else {
                        *slot = v;
                    }
                } else {
                    b.insert(k, v);
                }
            }
        }
        (b, e) => *b = e,
    }
}
/// An empty JSON object.
pub fn obj() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_lookup_is_case_insensitive() {
        let v = json!({"UserName": "a", "name": {"GivenName": "b"}, "emails": [{"type": "work", "Value": "x"}]});
        assert_eq!(attr(&v, "userName"), "a");
        assert_eq!(at(&v, "name.givenName"), "b");
        assert_eq!(typed_value(&v, "emails", "work").as_deref(), Some("x"));
        assert!(absent(at(&v, "name.familyName")));
    }

    #[test]
    fn merge_replaces_and_removes() {
        let mut b = json!({"a": 1, "n": {"x": 1, "y": 2}, "z": 3});
        merge(&mut b, json!({"n": {"y": 5}, "z": null}));
        assert_eq!(b, json!({"a": 1, "n": {"x": 1, "y": 5}}));
    }

    #[test]
    fn base_url_trailing_slash_and_paths() {
        let c = Ctx::new(&RunConfig::new("http://127.0.0.1:1/scim/v2/", "t")).unwrap();
        assert_eq!(c.url("/Users"), "http://127.0.0.1:1/scim/v2/Users");
        assert_eq!(c.url("http://x/y"), "http://x/y");
        assert!(Ctx::new(&RunConfig::new("ftp://x", "t")).is_err());
        assert_eq!(Ctx::enc("a b\""), "a%20b%22");
    }
}
