//! Delivering outcome callbacks: claim a due message, sign it (Standard Webhooks), POST it, and
//! record the answer: delivered on 2xx; otherwise due again after a backoff with jitter (on the
//! [`crate::clock::Clock`]), or `dead` after the tenant's `max_attempts`.

use super::callback::Callbacks;
use std::sync::Arc;
use std::time::Duration;

/// How long a delivery attempt holds its message (longer than any receiver timeout allowed).
const LEASE: Duration = Duration::from_secs(120);

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed; due again later.
    Retrying(String),
    /// It failed for the last time.
    Dead(String),
}

impl Callbacks {
    /// Delivers one due message; `None` when none is due.
    pub async fn deliver_one(&self, owner: &str) -> anyhow::Result<Option<(String, Attempt)>> {
        let now = self.clock.now();
        let Some(msg) = self.claim(owner, now, LEASE).await? else {
            return Ok(None);
        };
        let Some(target) = self.target(&msg.tenant) else {
            let why = format!(
                "no callback is configured for tenant {:?} any more",
                msg.tenant
            );
            self.finish_attempt(&msg.id, owner, now, Some(&why), None)
                .await?;
            return Ok(Some((msg.id, Attempt::Dead(why))));
        };
        let ts = now.unix_timestamp();
        let signature = target
            .keys
            .iter()
            .map(|k| k.sign(&msg.id, ts, msg.payload.as_bytes()))
            .collect::<Vec<_>>()
            .join(" ");
        let sent = self
            .http
            .post(&target.config.url)
            .timeout(Duration::from_secs(target.config.timeout_seconds))
            .header("content-type", "application/json")
            .header("webhook-id", &msg.id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(msg.payload.clone())
            .send()
            .await;
        let error = match sent {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("the receiver answered {}", r.status())),
            // the URL is configuration, not a secret; reqwest's message names it
            Err(e) => Some(format!("sending failed: {e}")),
        };
        let done = self.clock.now();
        let attempt = match error {
            None => {
                self.finish_attempt(&msg.id, owner, done, None, None)
                    .await?;
                tracing::info!(webhook_id = %msg.id, tenant = %msg.tenant, "outcome callback delivered");
                Attempt::Delivered
            }
            Some(why) if msg.attempts >= target.config.max_attempts => {
                self.finish_attempt(&msg.id, owner, done, Some(&why), None)
                    .await?;
                tracing::error!(webhook_id = %msg.id, tenant = %msg.tenant, attempts = msg.attempts, error = %why, "outcome callback given up");
                Attempt::Dead(why)
            }
            Some(why) => {
                let delay = target.config.backoff(msg.attempts, rand::random::<f64>());
                self.finish_attempt(&msg.id, owner, done, Some(&why), Some(done + delay))
                    .await?;
                tracing::warn!(webhook_id = %msg.id, tenant = %msg.tenant, attempts = msg.attempts, retry_in_s = delay.as_secs_f64(), error = %why, "outcome callback failed; retrying later");
                Attempt::Retrying(why)
            }
        };
        Ok(Some((msg.id, attempt)))
    }

    /// Delivers due messages until none is left (at most `max`); returns how many attempts
    /// were made.
    pub async fn deliver_due(&self, owner: &str, max: usize) -> anyhow::Result<usize> {
        for n in 0..max {
            if self.deliver_one(owner).await?.is_none() {
                return Ok(n);
            }
        }
        Ok(max)
    }

    /// Publishes the outbox's pending and dead counts.
    pub async fn record_metrics(&self) -> anyhow::Result<()> {
        let (pending, dead) = self.counts().await?;
        metrics::gauge!(crate::metrics::CALLBACK_DELIVERIES, "status" => "pending")
            .set(pending as f64);
        metrics::gauge!(crate::metrics::CALLBACK_DELIVERIES, "status" => "dead").set(dead as f64);
        Ok(())
    }
}

/// The delivery loop `serve` (and `bridge run`) runs: delivers what is due, then waits for a
/// new message or the poll interval (on the clock).
#[derive(Debug, Default)]
pub struct Background {
    running: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )>,
}

/// Between rounds when nothing wakes the loop.
const POLL: Duration = Duration::from_secs(1);
/// How long a delivered message is kept (for support questions) before it is purged.
const DELIVERED_KEPT: time::Duration = time::Duration::days(7);
/// How long a job's user waits for the bridge's outcome before the wait is dropped.
const WAITING_KEPT: time::Duration = time::Duration::days(30);

impl Background {
    /// Starts delivering (nothing without callbacks).
    pub fn start(callbacks: Option<Arc<Callbacks>>) -> Self {
        let Some(callbacks) = callbacks else {
            return Self::default();
        };
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let owner = format!("callbacks-{}", uuid::Uuid::new_v4().simple());
        let task = tokio::spawn(async move {
            loop {
                let round = async {
                    callbacks.deliver_due(&owner, 64).await?;
                    let now = callbacks.clock.now();
                    callbacks
                        .purge(now - DELIVERED_KEPT, now - WAITING_KEPT)
                        .await?;
                    callbacks.record_metrics().await
                };
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => break,
                    result = round => {
                        if let Err(e) = result {
                            tracing::error!(error = format!("{e:#}"), "outcome callback round failed");
                        }
                    }
                }
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => break,
                    () = callbacks.clock.sleep(POLL) => {}
                    () = callbacks.wake.notified() => {}
                }
            }
        });
        Self {
            running: Some((stop, task)),
        }
    }

    /// Stops delivering; a message being sent is sent again after its lease (receivers
    /// de-duplicate by `webhook-id`).
    pub async fn shutdown(self, grace: Duration) {
        if let Some((stop, mut task)) = self.running {
            let _ = stop.send(true);
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}
