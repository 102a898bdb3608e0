//! A fake Microsoft Graph: a real HTTP server on 127.0.0.1 for tests and demos.
//!
//! It emulates the token endpoint and every Graph call the bridge makes, with
//! Graph's documented behaviour (see `directory`): GUID ids, duplicate member
//! adds answered 400 "One or more added object references already exist",
//! 404 when removing a non-member, 400 on a duplicate role assignment or on a
//! license without usage location, `$batch` with per-item statuses in shuffled
//! order. Faults are scripted ([`Fault`]): 429/503 with (fractional) `Retry-After`,
//! writes that take effect and still answer 429, hangs, and replication-delay
//! 404s after a create. `GET /_fake/requests` and `GET /_fake/state` expose the
//! request log and the directory for inspection; `POST /_fake/faults` adds a fault;
//! `POST /_fake/signInActivity` sets a user's last sign-in.
//!
//! For governance it also answers group members and owners (`/groups/{id}/members`,
//! `/members/microsoft.graph.user`, `/owners`), role holders
//! (`roleAssignments?$filter=roleDefinitionId eq '…'`), license holders
//! (`/users?$filter=assignedLicenses/any(x:x/skuId eq …)`) and `signInActivity` on a user read
//! with `$select=signInActivity`.

mod directory;
pub mod fixtures;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use directory::Directory;

/// Settings of a fake tenant.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Tenant id accepted in the token URL.
    pub tenant_id: String,
    /// The application's client id.
    pub client_id: String,
    /// Accepted client secret (`None`: secrets are refused).
    pub client_secret: Option<String>,
    /// RSA public key (PEM) verifying client assertions; `None` accepts any signature.
    pub client_public_key_pem: Option<String>,
    /// `expires_in` of issued tokens.
    pub token_lifetime: Duration,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            tenant_id: "fake-tenant".into(),
            client_id: "fake-client".into(),
            client_secret: Some("fake-secret".into()),
            client_public_key_pem: None,
            token_lifetime: Duration::from_secs(3599),
        }
    }
}

/// A scripted fault, matched against each request (including `$batch` items).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Fault {
    /// Only this method (e.g. `POST`); any when `None`.
    pub method: Option<String>,
    /// Substring the path must contain (e.g. `/members/$ref`); any when empty.
    pub path_contains: String,
    /// Matching requests to let through before the fault starts.
    pub skip: u32,
    /// How many matching requests fail.
    pub times: u32,
    /// Status to answer (429, 503, 504, 500…).
    pub status: u16,
    /// `Retry-After` header value (may be fractional such as `0.5`).
    pub retry_after: Option<String>,
    /// Carry out the request first, then answer with the fault anyway.
    pub apply_then_fail: bool,
    /// Never answer (the request hangs until the client gives up).
    pub hang: bool,
    /// Error message (with code `Request_BadRequest` for 400s) instead of the default.
    pub message: Option<String>,
}

/// One logged request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Sequence number.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path below the Graph version segment (e.g. `/users/{id}`), or the token path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// JSON body, if any.
    pub body: Option<Value>,
    /// Status answered.
    pub status: u16,
    /// Whether this was an item inside a `$batch`.
    pub in_batch: bool,
    /// Milliseconds since the server started.
    pub at_ms: u64,
    /// The `request-id` header answered.
    #[serde(default)]
    pub request_id: Option<String>,
}

impl LoggedRequest {
    /// Whether this is a Graph write (not a read, token request or `$batch` envelope).
    pub fn is_write(&self) -> bool {
        self.method != "GET" && self.path != "/$batch" && !self.path.contains("/oauth2/")
    }
}

pub(crate) struct Shared {
    pub(crate) cfg: FakeConfig,
    pub(crate) base_url: String,
    pub(crate) started: Instant,
    pub(crate) state: Mutex<FakeState>,
}

#[derive(Default)]
pub(crate) struct FakeState {
    pub(crate) dir: Directory,
    log: Vec<LoggedRequest>,
    faults: Vec<(Fault, u32)>,
    tokens: HashMap<String, Instant>,
    token_requests: usize,
    jtis: HashSet<String>,
}

/// What a fault check decided.
pub(crate) enum FaultHit {
    None,
    Fail(Fault),
    ApplyThenFail(Fault),
    Hang,
}

impl FakeState {
    pub(crate) fn check_fault(&mut self, method: &str, path: &str) -> FaultHit {
        for (f, seen) in &mut self.faults {
            let method_ok = f
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method));
            if !method_ok || !path.contains(&f.path_contains) {
                continue;
            }
            *seen += 1;
            if *seen <= f.skip || *seen > f.skip + f.times {
                continue;
            }
            return if f.hang {
                FaultHit::Hang
            } else if f.apply_then_fail {
                FaultHit::ApplyThenFail(f.clone())
            } else {
                FaultHit::Fail(f.clone())
            };
        }
        FaultHit::None
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn log(
        &mut self,
        started: Instant,
        method: &str,
        path: &str,
        query: &str,
        body: Option<Value>,
        status: u16,
        in_batch: bool,
    ) {
        let seq = self.log.len() as u64 + 1;
        self.log.push(LoggedRequest {
            seq,
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            body,
            status,
            in_batch,
            at_ms: started.elapsed().as_millis() as u64,
            request_id: None,
        });
    }

    /// Notes the `request-id` answered to the request logged last.
    pub(crate) fn set_last_request_id(&mut self, id: String) {
        if let Some(last) = self.log.last_mut() {
            last.request_id = Some(id);
        }
    }
}

/// A Graph-style error response body.
pub(crate) fn graph_error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message,
        "innerError": {"date": "2026-01-01T00:00:00", "request-id": uuid::Uuid::new_v4().to_string(),
                       "client-request-id": uuid::Uuid::new_v4().to_string()}}})
}

/// A response produced by the emulation, before encoding.
#[derive(Clone, Debug)]
pub(crate) struct FakeResponse {
    pub(crate) status: u16,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Option<Value>,
}

impl FakeResponse {
    pub(crate) fn new(status: u16, body: Option<Value>) -> Self {
        Self {
            status,
            headers: BTreeMap::new(),
            body,
        }
    }
    pub(crate) fn err(status: u16, code: &str, message: &str) -> Self {
        Self::new(status, Some(graph_error(code, message)))
    }
    pub(crate) fn fault(f: &Fault) -> Self {
        let (code, msg) = match f.status {
            429 => ("TooManyRequests", "Please retry again later."),
            503 => ("serviceNotAvailable", "Service unavailable."),
            504 => ("gatewayTimeout", "Gateway timeout."),
            _ => ("generalException", "An error occurred."),
        };
        let mut r = match (&f.message, f.status) {
            (Some(m), 400) => Self::err(400, "Request_BadRequest", m),
            (Some(m), _) => Self::err(f.status, code, m),
            (None, _) => Self::err(f.status, code, msg),
        };
        if let Some(ra) = &f.retry_after {
            r.headers.insert("Retry-After".into(), ra.clone());
        }
        r
    }
}

/// A running fake Graph server; stopped when dropped.
pub struct FakeGraph {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGraph")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGraph {
    /// Binds 127.0.0.1:0 and serves in a background task.
    pub async fn start(cfg: FakeConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            cfg,
            base_url: format!("http://{addr}"),
            started: Instant::now(),
            state: Mutex::new(FakeState::default()),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// Starts with [`FakeConfig::default`].
    pub async fn start_default() -> std::io::Result<Self> {
        Self::start(FakeConfig::default()).await
    }

    /// The authority base URL (`http://127.0.0.1:port`).
    pub fn authority_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The Graph base URL (`http://127.0.0.1:port/v1.0`).
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.shared.base_url)
    }

    /// The configuration the fake was started with.
    pub fn config(&self) -> &FakeConfig {
        &self.shared.cfg
    }

    /// Runs `f` on the directory (to seed or inspect state).
    pub fn with_directory<T>(&self, f: impl FnOnce(&mut Directory) -> T) -> T {
        f(&mut self.shared.state.lock().expect("fake state").dir)
    }

    /// Adds a scripted fault.
    pub fn inject(&self, fault: Fault) {
        self.shared
            .state
            .lock()
            .expect("fake state")
            .faults
            .push((fault, 0));
    }

    /// Sets a user's (id or UPN) `signInActivity.lastSignInDateTime`, as the inspection
    /// endpoint `POST /_fake/signInActivity` does.
    pub fn set_last_sign_in(&self, user: &str, at: Option<&str>) -> bool {
        self.with_directory(|d| d.set_last_sign_in(user, at))
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        self.shared.state.lock().expect("fake state").faults.clear();
    }

    /// The request log.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.state.lock().expect("fake state").log.clone()
    }

    /// Graph writes in the log (batch items included, envelopes excluded).
    pub fn writes(&self) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(LoggedRequest::is_write)
            .collect()
    }

    /// Number of Graph requests (token requests excluded).
    pub fn graph_request_count(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| !r.path.contains("/oauth2/"))
            .count()
    }

    /// Clears the request log.
    pub fn clear_log(&self) {
        self.shared.state.lock().expect("fake state").log.clear();
    }

    /// Number of token requests served.
    pub fn token_requests(&self) -> usize {
        self.shared.state.lock().expect("fake state").token_requests
    }

    /// Expires every issued token (the next Graph call gets 401).
    pub fn expire_tokens(&self) {
        self.shared.state.lock().expect("fake state").tokens.clear();
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 4 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let method = parts.method.clone();
    if let Some(rest) = path.strip_prefix("/_fake/") {
        return inspect(&shared, &method, rest, &body);
    }
    if path.ends_with("/oauth2/v2.0/token") && method == Method::POST {
        return token(&shared, &path, &body);
    }
    let Some(graph_path) = path.strip_prefix("/v1.0") else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(graph_error("Request_BadRequest", "unknown path")),
        )
            .into_response();
    };
    let graph_path = graph_path.to_owned();
    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let fake = {
        let mut st = shared.state.lock().expect("fake state");
        if let Err(resp) = check_auth(&mut st, &parts.headers) {
            st.log(
                shared.started,
                method.as_str(),
                &graph_path,
                &query,
                json_body.clone(),
                resp.status,
                false,
            );
            Ok(resp)
        } else if !body.is_empty() && json_body.is_none() {
            Ok(FakeResponse::err(400, "BadRequest", "Invalid JSON body"))
        } else {
            directory::dispatch_logged(
                &shared,
                &mut st,
                method.as_str(),
                &graph_path,
                &query,
                &parts.headers,
                json_body,
                false,
            )
        }
    };
    match fake {
        Ok(r) => encode(r),
        Err(()) => std::future::pending::<Response>().await,
    }
}

fn check_auth(st: &mut FakeState, headers: &HeaderMap) -> Result<(), FakeResponse> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    match st.tokens.get(token) {
        Some(exp) if *exp > Instant::now() => Ok(()),
        _ => Err(FakeResponse::err(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty or has expired.",
        )),
    }
}

fn encode(r: FakeResponse) -> Response {
    let mut resp = match r.body {
        Some(b) => (
            StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
            axum::Json(b),
        )
            .into_response(),
        None => StatusCode::from_u16(r.status)
            .unwrap_or(StatusCode::OK)
            .into_response(),
    };
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (k.parse::<axum::http::HeaderName>(), v.parse()) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

fn aad_error(status: StatusCode, error: &str, code: u32, desc: &str) -> Response {
    (status, axum::Json(json!({"error": error, "error_description": format!("AADSTS{code}: {desc}"),
        "error_codes": [code], "timestamp": "2026-01-01 00:00:00Z",
        "trace_id": uuid::Uuid::new_v4().to_string(), "correlation_id": uuid::Uuid::new_v4().to_string()})))
        .into_response()
}

#[derive(Deserialize)]
struct AssertionClaims {
    aud: String,
    iss: String,
    sub: String,
    jti: String,
    exp: i64,
}

fn token(shared: &Shared, path: &str, body: &[u8]) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let cfg = &shared.cfg;
    let mut st = shared.state.lock().expect("fake state");
    st.token_requests += 1;
    st.log(shared.started, "POST", path, "", None, 200, false);
    let tenant = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if tenant != cfg.tenant_id {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            "Tenant not found.",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if !form
        .get("scope")
        .is_some_and(|s| s.ends_with("/.default") && !s.contains(' '))
    {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid.",
        );
    }
    if form.get("client_id") != Some(&cfg.client_id) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application not found in the directory.",
        );
    }
    if let Some(secret) = form.get("client_secret") {
        if cfg.client_secret.as_ref() != Some(secret) {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            );
        }
    } else if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "Invalid client_assertion_type.",
            );
        }
        let token_url = format!("{}{}", shared.base_url, path);
        if let Err(e) = check_assertion(cfg, &mut st.jtis, assertion, &token_url) {
            return aad_error(StatusCode::UNAUTHORIZED, "invalid_client", 700027, &e);
        }
    } else {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain 'client_assertion' or 'client_secret'.",
        );
    }
    let access = uuid::Uuid::new_v4().simple().to_string();
    st.tokens
        .insert(access.clone(), Instant::now() + cfg.token_lifetime);
    axum::Json(json!({"token_type": "Bearer", "expires_in": cfg.token_lifetime.as_secs(), "ext_expires_in": cfg.token_lifetime.as_secs(), "access_token": access})).into_response()
}

fn check_assertion(
    cfg: &FakeConfig,
    jtis: &mut HashSet<String>,
    assertion: &str,
    token_url: &str,
) -> Result<(), String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    let header =
        decode_header(assertion).map_err(|e| format!("Client assertion is not a JWT: {e}"))?;
    if !matches!(header.alg, Algorithm::PS256 | Algorithm::RS256) {
        return Err("Client assertion must be signed with PS256 or RS256.".into());
    }
    if header.x5t_s256.is_none() && header.x5t.is_none() {
        return Err("Client assertion header lacks x5t#S256.".into());
    }
    let mut v = Validation::new(header.alg);
    v.set_audience(&[token_url]);
    v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let key = match &cfg.client_public_key_pem {
        Some(pem) => DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())?,
        None => {
            v.insecure_disable_signature_validation();
            DecodingKey::from_secret(b"")
        }
    };
    let data = decode::<AssertionClaims>(assertion, &key, &v)
        .map_err(|e| format!("Client assertion failed validation: {e}"))?;
    let c = data.claims;
    if c.iss != cfg.client_id || c.sub != cfg.client_id {
        return Err("Client assertion iss/sub must be the client id.".into());
    }
    if c.aud != token_url || c.exp <= time::OffsetDateTime::now_utc().unix_timestamp() {
        return Err("Client assertion audience or expiry invalid.".into());
    }
    if !jtis.insert(c.jti) {
        return Err("Client assertion jti was already used.".into());
    }
    Ok(())
}

fn inspect(shared: &Shared, method: &Method, rest: &str, body: &[u8]) -> Response {
    let mut st = shared.state.lock().expect("fake state");
    match (method.as_str(), rest) {
        ("GET", "requests") => {
            axum::Json(serde_json::to_value(&st.log).unwrap_or_default()).into_response()
        }
        ("GET", "state") => axum::Json(st.dir.snapshot()).into_response(),
        ("POST", "signInActivity") => {
            // {"user": id or UPN, "lastSignInDateTime": RFC 3339 or null}
            let Ok(b) = serde_json::from_slice::<Value>(body) else {
                return (StatusCode::BAD_REQUEST, "a JSON body is required").into_response();
            };
            let (Some(user), at) = (b["user"].as_str(), b["lastSignInDateTime"].as_str()) else {
                return (StatusCode::BAD_REQUEST, "`user` (id or UPN) is required").into_response();
            };
            if st.dir.set_last_sign_in(user, at) {
                StatusCode::NO_CONTENT.into_response()
            } else {
                StatusCode::NOT_FOUND.into_response()
            }
        }
        ("POST", "faults") => match serde_json::from_slice::<Fault>(body) {
            Ok(f) => {
                st.faults.push((f, 0));
                StatusCode::NO_CONTENT.into_response()
            }
            Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        },
        ("DELETE", "requests") => {
            st.log.clear();
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
