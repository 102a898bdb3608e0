//! The HTTP client and the closed-loop driver: a fixed number of workers, each sending its next
//! request as soon as the previous answer is read, until a deadline or a request count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng as _;
use rand::rngs::StdRng;

use super::LoadError;
use super::hist::Recorder;
use super::plan::{Method, Req};
use crate::ctx::SCIM_JSON;

/// An HTTP/1.1 client bound to a SCIM base URL and bearer token. Given several base URLs
/// (replicas of one server on one database), it sends to the first; [`Client::for_worker`]
/// spreads workers over all of them.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    bases: Arc<[Arc<str>]>,
    base: Arc<str>,
    auth: Arc<str>,
}

/// An answer: status and body.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Client {
    /// A client keeping up to `connections` idle keep-alive connections; `base_url` may list
    /// several base URLs separated by commas.
    pub fn new(
        base_url: &str,
        token: &str,
        connections: usize,
        timeout: Duration,
    ) -> Result<Self, LoadError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections.max(1))
            .tcp_nodelay(true)
            .timeout(timeout)
            .build()
            .map_err(|e| LoadError::Usage(format!("HTTP client: {e}")))?;
        let bases: Vec<Arc<str>> = base_url
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(|b| b.trim_end_matches('/').into())
            .collect();
        let Some(first) = bases.first().cloned() else {
            return Err(LoadError::Usage("--base-url is empty".into()));
        };
        Ok(Self {
            http,
            bases: bases.into(),
            base: first,
            auth: format!("Bearer {token}").into(),
        })
    }

    /// The client worker `w` uses: base URL `w` modulo their number, so the connections of a
    /// run spread evenly over the replicas.
    pub fn for_worker(&self, w: usize) -> Client {
        let mut c = self.clone();
        c.base = self.bases[w % self.bases.len()].clone();
        c
    }

    /// How many base URLs (replicas) the client spreads over.
    pub fn replicas(&self) -> usize {
        self.bases.len()
    }

    /// Sends `req`; `Err` carries a transport error description.
    pub async fn send(&self, req: &Req) -> Result<Answer, String> {
        let url = format!("{}{}", self.base, req.path);
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Patch => reqwest::Method::PATCH,
        };
        let mut b = self
            .http
            .request(method, url)
            .header("authorization", &*self.auth)
            .header("accept", SCIM_JSON);
        if let Some(body) = &req.body {
            b = b.header("content-type", SCIM_JSON).body(body.clone());
        }
        let resp = b.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        Ok(Answer {
            status,
            body: body.to_vec(),
        })
    }

    /// Sends `req` and records its latency and status in `rec`; the answer if there was one.
    pub async fn timed(&self, rec: &mut Recorder, req: &Req) -> Option<Answer> {
        let t = Instant::now();
        match self.send(req).await {
            Ok(a) => {
                rec.answer(a.status, t.elapsed(), &a.body);
                Some(a)
            }
            Err(e) => {
                rec.transport_error(&e);
                None
            }
        }
    }
}

/// When a measurement stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// After this long (requests in flight at the deadline still complete and count).
    Duration(Duration),
    /// After this many requests in all.
    Requests(u64),
}

/// Builds the `k`-th request of worker `w` (with a per-worker random source).
pub type Generator = Arc<dyn Fn(usize, u64, &mut StdRng) -> Req + Send + Sync>;

/// Stop sending after this many transport errors in a row in one worker (server gone).
const MAX_TRANSPORT_ERRORS_IN_A_ROW: u64 = 20;

/// Runs `concurrency` workers sending `generate`d requests until `limit`; returns what they
/// recorded and the wall-clock time.
pub async fn drive(
    client: &Client,
    concurrency: usize,
    limit: Limit,
    generate: Generator,
) -> (Recorder, Duration) {
    let tickets = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = match limit {
        Limit::Duration(d) => Some(start + d),
        Limit::Requests(_) => None,
    };
    let max = match limit {
        Limit::Requests(n) => n,
        Limit::Duration(_) => u64::MAX,
    };
    let mut tasks = Vec::with_capacity(concurrency);
    for w in 0..concurrency.max(1) {
        let client = client.for_worker(w);
        let tickets = tickets.clone();
        let generate = generate.clone();
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::default();
            let mut rng = StdRng::seed_from_u64(0x5c1e_0000 + w as u64);
            let mut k = 0u64;
            let mut failures_in_a_row = 0;
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if tickets.fetch_add(1, Ordering::Relaxed) >= max {
                    break;
                }
                let req = generate(w, k, &mut rng);
                k += 1;
                let before = rec.transport_errors;
                client.timed(&mut rec, &req).await;
                if rec.transport_errors > before {
                    failures_in_a_row += 1;
                    if failures_in_a_row >= MAX_TRANSPORT_ERRORS_IN_A_ROW {
                        break;
                    }
                } else {
                    failures_in_a_row = 0;
                }
            }
            rec
        }));
    }
    let mut all = Recorder::default();
    for t in tasks {
        if let Ok(rec) = t.await {
            all.merge(&rec);
        }
    }
    (all, start.elapsed())
}

/// Runs `job(client, index, recorder)` for every index in `0..n` on `concurrency` workers; the
/// jobs' results in index order (`None` where a job gave none or was not started because
/// `deadline` had passed).
pub async fn for_each<T, F, Fut>(
    client: &Client,
    n: usize,
    concurrency: usize,
    deadline: Option<Instant>,
    job: F,
) -> (Vec<Option<T>>, Recorder, Duration)
where
    T: Send + 'static,
    F: Fn(Client, usize, Recorder) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (Option<T>, Recorder)> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let job = Arc::new(job);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency.max(1).min(n.max(1)) {
        let next = next.clone();
        let job = job.clone();
        let client = client.for_worker(w);
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::default();
            let mut out = Vec::new();
            let mut failing_in_a_row = 0;
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    break;
                }
                let before = rec.transport_errors;
                let (v, r) = job(client.clone(), i, rec).await;
                rec = r;
                out.push((i, v));
                // A server that stopped answering ends the phase instead of timing out n times.
                if rec.transport_errors > before {
                    failing_in_a_row += 1;
                    if failing_in_a_row >= MAX_TRANSPORT_ERRORS_IN_A_ROW {
                        break;
                    }
                } else {
                    failing_in_a_row = 0;
                }
            }
            (out, rec)
        }));
    }
    let mut results: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut all = Recorder::default();
    for t in tasks {
        if let Ok((out, rec)) = t.await {
            all.merge(&rec);
            for (i, v) in out {
                results[i] = v;
            }
        }
    }
    (results, all, start.elapsed())
}
