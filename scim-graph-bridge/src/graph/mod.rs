//! A thin Microsoft Graph client over reqwest (rustls).
//!
//! It owns the retry policy: 429/503/504 honour `Retry-After` (fractional
//! seconds or an HTTP date) or fall back to full-jitter exponential backoff;
//! 500/502 are retried only for idempotent methods; a 401 refreshes the token
//! once; a 404 on an object the client itself created moments ago, and the
//! "invalid usage location" 400 right after setting one, are retried for a
//! bounded time (replication delay). Writes pass a client-side token bucket.
//! `$batch` splits into chunks of 20 and retries only the throttled items.

pub mod auth;
mod batch;
pub mod classify;
pub mod limiter;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::Value;
use time::OffsetDateTime;

use crate::clock::Clock;
pub use auth::Credential;
pub use auth::TokenSource;
pub use classify::{OpKind, Outcome, classify};
pub use limiter::RateLimiter;

/// Errors of the Graph client.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum GraphError {
    /// The request could not be sent or the response not read.
    #[error("transport: {0}")]
    Transport(String),
    /// A token could not be obtained.
    #[error("authentication: {0}")]
    Auth(String),
    /// Graph answered with an unexpected error.
    #[error("Graph answered {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Graph error code.
        code: String,
        /// Graph error message.
        message: String,
    },
}

impl GraphError {
    /// Whether retrying later may help.
    pub fn is_transient(&self) -> bool {
        match self {
            GraphError::Transport(_) => true,
            GraphError::Auth(_) => false,
            GraphError::Api { status, .. } => {
                matches!(status, 404 | 408 | 429 | 500 | 502 | 503 | 504)
            }
        }
    }
}

/// A request relative to the Graph base URL (e.g. `/users/{id}`).
#[derive(Clone, Debug)]
pub struct GraphRequest {
    /// HTTP method.
    pub method: reqwest::Method,
    /// Path and query relative to the base URL, or an absolute `@odata.nextLink`.
    pub path: String,
    /// JSON body.
    pub body: Option<Value>,
}

impl GraphRequest {
    /// A GET.
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: reqwest::Method::GET,
            path: path.into(),
            body: None,
        }
    }
    /// A request with a JSON body.
    pub fn with_body(method: reqwest::Method, path: impl Into<String>, body: Value) -> Self {
        Self {
            method,
            path: path.into(),
            body: Some(body),
        }
    }
    /// A request without body.
    pub fn new(method: reqwest::Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            body: None,
        }
    }
    fn is_write(&self) -> bool {
        self.method != reqwest::Method::GET
    }
    fn idempotent(&self) -> bool {
        matches!(
            self.method,
            reqwest::Method::GET
                | reqwest::Method::PUT
                | reqwest::Method::PATCH
                | reqwest::Method::DELETE
        )
    }
}

/// A final Graph response.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// JSON body (`Null` when empty).
    pub body: Value,
}

impl GraphResponse {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    /// The error as a [`GraphError`].
    pub fn to_error(&self) -> GraphError {
        let (code, message) = classify::error_parts(&self.body);
        GraphError::Api {
            status: self.status,
            code,
            message,
        }
    }
}

/// Retry settings.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per request for throttling and server errors.
    pub max_attempts: u32,
    /// First backoff step.
    pub base_delay: Duration,
    /// Largest backoff step.
    pub max_delay: Duration,
    /// How long after creating an object its 404s count as replication delay.
    pub replication_window: Duration,
    /// Retries for a replication-delay 404 (or usage-location 400).
    pub replication_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            replication_window: Duration::from_secs(300),
            replication_attempts: 6,
        }
    }
}

/// Counters for observation and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// HTTP requests sent to Graph (batch envelopes count once).
    pub requests: u64,
    /// Retries after 429/503/504.
    pub throttled_retries: u64,
    /// Retries after replication-delay answers.
    pub replication_retries: u64,
    /// Token refreshes forced by a 401.
    pub auth_refreshes: u64,
}

/// The Graph client.
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    auth: TokenSource,
    limiter: RateLimiter,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    created: Mutex<HashMap<String, OffsetDateTime>>,
    usage_location_set: Mutex<HashMap<String, OffsetDateTime>>,
    stats: Mutex<ClientStats>,
    inflight: tokio::sync::Semaphore,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base", &self.base)
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

/// Concurrent requests per client (a cap in front of Graph, besides the write rate).
pub const MAX_IN_FLIGHT: usize = 8;

/// Maximum requests per `$batch`.
pub const BATCH_LIMIT: usize = 20;

impl GraphClient {
    /// A client with explicit settings.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        authority_url: &str,
        graph_url: &str,
        tenant: &str,
        client_id: &str,
        credential: Credential,
        writes_per_second: f64,
        write_burst: u32,
        policy: RetryPolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("scim-graph-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            auth: TokenSource::new(
                http.clone(),
                authority_url,
                tenant,
                client_id,
                credential,
                clock.clone(),
            ),
            limiter: RateLimiter::new(writes_per_second, write_burst, clock.clone()),
            http,
            base: graph_url.trim_end_matches('/').to_owned(),
            clock,
            policy,
            created: Mutex::new(HashMap::new()),
            usage_location_set: Mutex::new(HashMap::new()),
            stats: Mutex::new(ClientStats::default()),
            inflight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        }
    }

    /// The Graph base URL (e.g. `https://graph.microsoft.com/v1.0`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The write rate limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        self.stats.lock().expect("stats").clone()
    }

    /// Remembers that the client created `id` now (its 404s are replication delay for a while).
    pub fn note_created(&self, id: &str) {
        self.created
            .lock()
            .expect("created")
            .insert(id.to_owned(), self.clock.now());
    }

    fn recent(
        map: &Mutex<HashMap<String, OffsetDateTime>>,
        now: OffsetDateTime,
        window: Duration,
        text: &str,
    ) -> bool {
        let mut m = map.lock().expect("recent");
        m.retain(|_, t| now - *t < window);
        m.keys().any(|id| text.contains(id.as_str()))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .policy
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.policy.max_delay);
        let ms = cap.as_millis().max(1) as u64;
        Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
    }

    fn retry_delay(&self, headers: &BTreeMap<String, String>, attempt: u32) -> Duration {
        match headers
            .get("retry-after")
            .and_then(|v| parse_retry_after(v, self.clock.now()))
        {
            Some(d) => d + Duration::from_millis(rand::thread_rng().gen_range(0..=100)),
            None => self.backoff(attempt),
        }
    }

    /// Whether a failed answer is a known replication-delay signature for this request.
    fn replication_lag(&self, req: &GraphRequest, status: u16, body: &Value) -> bool {
        let now = self.clock.now();
        let text = format!(
            "{} {}",
            req.path,
            req.body.as_ref().map(Value::to_string).unwrap_or_default()
        );
        let w = self.policy.replication_window;
        match status {
            404 => {
                // a missing manager is a plain 404, not replication delay
                req.method != reqwest::Method::DELETE
                    && !req.path.contains("/manager?")
                    && Self::recent(&self.created, now, w, &text)
            }
            400 => {
                req.path.ends_with("/assignLicense")
                    && classify::error_parts(body)
                        .1
                        .to_lowercase()
                        .contains("invalid usage location")
                    && (Self::recent(&self.usage_location_set, now, w, &req.path)
                        || Self::recent(&self.created, now, w, &req.path))
            }
            _ => false,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    /// Sends one request with retries; returns the final response (which may be an error status).
    pub async fn send(&self, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
        self.send_inner(req, req.is_write()).await
    }

    async fn send_inner(
        &self,
        req: &GraphRequest,
        limited: bool,
    ) -> Result<GraphResponse, GraphError> {
        let mut refreshed = false;
        let mut attempt = 0u32;
        let mut lag = 0u32;
        let max_loops = self.policy.max_attempts + self.policy.replication_attempts + 2;
        let mut last: Option<GraphResponse> = None;
        for _ in 0..max_loops {
            if limited {
                self.limiter.acquire().await;
            }
            let token = self.auth.token(false).await?;
            let mut rb = self
                .http
                .request(req.method.clone(), self.url(&req.path))
                .bearer_auth(token)
                .header("client-request-id", uuid::Uuid::new_v4().to_string());
            if let Some(b) = &req.body {
                rb = rb.json(b);
            }
            self.stats.lock().expect("stats").requests += 1;
            let permit = self.inflight.acquire().await.ok();
            let sent = rb.send().await;
            drop(permit);
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    if req.idempotent() && attempt + 1 < self.policy.max_attempts {
                        attempt += 1;
                        self.clock.sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    return Err(GraphError::Transport(e.without_url().to_string()));
                }
            };
            let status = resp.status().as_u16();
            let headers: BTreeMap<String, String> = resp
                .headers()
                .iter()
                .filter_map(|(k, v)| {
                    v.to_str()
                        .ok()
                        .map(|v| (k.as_str().to_ascii_lowercase(), v.to_owned()))
                })
                .collect();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| GraphError::Transport(e.without_url().to_string()))?;
            let body: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or(Value::Null)
            };
            let r = GraphResponse {
                status,
                headers,
                body,
            };
            let retryable = matches!(status, 429 | 503 | 504)
                || (matches!(status, 500 | 502) && req.idempotent());
            if status == 401 && !refreshed {
                refreshed = true;
                self.stats.lock().expect("stats").auth_refreshes += 1;
                self.auth.token(true).await?;
                continue;
            }
            if retryable && attempt + 1 < self.policy.max_attempts {
                attempt += 1;
                self.stats.lock().expect("stats").throttled_retries += 1;
                let d = self.retry_delay(&r.headers, attempt);
                self.clock.sleep(d).await;
                last = Some(r);
                continue;
            }
            if lag < self.policy.replication_attempts && self.replication_lag(req, status, &r.body)
            {
                lag += 1;
                self.stats.lock().expect("stats").replication_retries += 1;
                self.clock.sleep(self.backoff(lag)).await;
                last = Some(r);
                continue;
            }
            self.after_success(req, &r);
            return Ok(r);
        }
        last.ok_or_else(|| GraphError::Transport("retry budget exhausted".into()))
    }

    fn after_success(&self, req: &GraphRequest, r: &GraphResponse) {
        if !r.is_success() {
            return;
        }
        let now = self.clock.now();
        if req.method == reqwest::Method::POST
            && req.path == "/users"
            && let Some(id) = r.body["id"].as_str()
        {
            self.created
                .lock()
                .expect("created")
                .insert(id.to_owned(), now);
        }
        if req.method == reqwest::Method::PATCH
            && req
                .body
                .as_ref()
                .is_some_and(|b| b.get("usageLocation").is_some())
        {
            let id = req.path.trim_start_matches("/users/").to_owned();
            self.usage_location_set
                .lock()
                .expect("usage")
                .insert(id, now);
        }
    }

    /// GETs a collection, following `@odata.nextLink` (at most `max_pages` pages).
    pub async fn get_all(&self, path: &str, max_pages: usize) -> Result<Vec<Value>, GraphError> {
        let mut out = Vec::new();
        let mut next = Some(path.to_owned());
        for _ in 0..max_pages {
            let Some(p) = next.take() else { break };
            let r = self.send(&GraphRequest::get(p)).await?;
            if !r.is_success() {
                return Err(r.to_error());
            }
            out.extend(r.body["value"].as_array().cloned().unwrap_or_default());
            next = r.body["@odata.nextLink"].as_str().map(str::to_owned);
        }
        Ok(out)
    }
}

/// Parses `Retry-After`: seconds (possibly fractional) or an HTTP date.
pub fn parse_retry_after(v: &str, now: OffsetDateTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let t = OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let d = t - now;
    Some(if d.is_negative() {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(d.as_seconds_f64().min(3600.0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = time::macros::datetime!(2015-10-21 07:28:00 UTC);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("2.128", now),
            Some(Duration::from_secs_f64(2.128))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
