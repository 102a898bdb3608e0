//! JSON `$batch`: chunks of 20, per-item statuses, retry of throttled items only.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::{BATCH_LIMIT, GraphClient, GraphError, GraphRequest, GraphResponse};

impl GraphClient {
    /// Sends requests as JSON `$batch`es of up to 20, retrying throttled items only
    /// (after the longest `Retry-After`). Results are in request order.
    pub async fn batch(&self, reqs: &[GraphRequest]) -> Result<Vec<GraphResponse>, GraphError> {
        let mut results: Vec<Option<GraphResponse>> = vec![None; reqs.len()];
        for chunk_start in (0..reqs.len()).step_by(BATCH_LIMIT) {
            let mut pending: Vec<usize> =
                (chunk_start..(chunk_start + BATCH_LIMIT).min(reqs.len())).collect();
            let mut lag_retries = 0u32;
            for attempt in 0..self.policy.max_attempts {
                let mut items = Vec::with_capacity(pending.len());
                for &i in &pending {
                    let r = &reqs[i];
                    if r.is_write() {
                        self.limiter.acquire().await;
                    }
                    let mut item =
                        json!({"id": i.to_string(), "method": r.method.as_str(), "url": r.path});
                    if let Some(b) = &r.body {
                        item["headers"] = json!({"Content-Type": "application/json"});
                        item["body"] = b.clone();
                    }
                    items.push(item);
                }
                let outer = self
                    .send_inner(
                        &GraphRequest::with_body(
                            reqwest::Method::POST,
                            "/$batch",
                            json!({"requests": items}),
                        ),
                        false,
                    )
                    .await?;
                if outer.status != 200 {
                    return Err(outer.to_error());
                }
                let mut retry = Vec::new();
                let mut wait = Duration::ZERO;
                for item in outer.body["responses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    let Some(i) = item["id"]
                        .as_str()
                        .and_then(|s| s.parse::<usize>().ok())
                        .filter(|i| pending.contains(i))
                    else {
                        continue;
                    };
                    let mut headers: BTreeMap<String, String> = item["headers"]
                        .as_object()
                        .map(|h| {
                            h.iter()
                                .filter_map(|(k, v)| {
                                    v.as_str().map(|v| (k.to_ascii_lowercase(), v.to_owned()))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    // an item without its own request id is known by the envelope's
                    if let (false, Some(rid)) = (
                        headers.contains_key("request-id"),
                        outer.headers.get("request-id"),
                    ) {
                        headers.insert("request-id".into(), rid.clone());
                    }
                    let status = item["status"].as_u64().unwrap_or(0) as u16;
                    let resp = GraphResponse {
                        status,
                        headers,
                        body: item.get("body").cloned().unwrap_or(Value::Null),
                    };
                    let throttled = matches!(status, 429 | 503 | 504);
                    let lag = !throttled
                        && lag_retries < self.policy.replication_attempts
                        && self.replication_lag(&reqs[i], status, &resp.body);
                    if throttled || lag {
                        wait = wait.max(if throttled {
                            self.retry_delay(&resp.headers, attempt + 1)
                        } else {
                            self.backoff(lag_retries + 1)
                        });
                        retry.push(i);
                        if lag {
                            lag_retries += 1;
                            self.stats.lock().expect("stats").replication_retries += 1;
                        } else {
                            self.stats.lock().expect("stats").throttled_retries += 1;
                        }
                    } else {
                        self.after_success(&reqs[i], &resp);
                    }
                    results[i] = Some(resp);
                }
                // items missing from the answer are retried too
                retry.extend(pending.iter().copied().filter(|i| results[*i].is_none()));
                retry.sort_unstable();
                retry.dedup();
                if retry.is_empty() || attempt + 1 == self.policy.max_attempts {
                    break;
                }
                self.clock.sleep(wait.max(Duration::from_millis(1))).await;
                pending = retry;
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or(GraphResponse {
                    status: 504,
                    headers: BTreeMap::new(),
                    body: Value::Null,
                })
            })
            .collect())
    }
}
