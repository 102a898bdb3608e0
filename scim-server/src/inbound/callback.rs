//! Outcome callbacks: what became of an HR system's records, POSTed back to it.
//!
//! A tenant configures a URL and secrets (`[[inbound.callbacks]]`). Then:
//! - every intake job, once applied (bulkUpload, CSV upload, or the job of an HR event), is
//!   reported as `job.completed`, `job.completedWithErrors` or `job.failed` (an HR event's job as
//!   `event.applied` or `event.failed`), with its per-record outcomes and SCIM ids;
//! - when the Graph bridge runs, each user a job created or updated is reported again once the
//!   bridge has settled a plan computed from that write (`provisioning.applied`,
//!   `provisioning.planned` in plan mode, `provisioning.deadLettered`, or
//!   `provisioning.rejected` when an operator rejected a leaver plan the mass-change guard
//!   held), with the job (and event) it answers;
//! - when the bridge's mass-change guard starts holding the tenant's leaver plans:
//!   `guard.tripped`.
//!
//! Messages follow the Standard Webhooks conventions the intake's events use
//! ([`super::signature`]): a body `{"type", "timestamp", "data"}`, headers `webhook-id` (stable
//! per message: a retry carries the same one, so the receiver can de-duplicate),
//! `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256>` per configured secret,
//! space-separated while rotating).
//!
//! Durability: a message is a row of `callback_deliveries` (the outbox, `callback_store.rs`),
//! written before what it reports is marked done (a job is recorded before it is finished; a
//! bridge outcome before the bridge completes its work item), with an id derived from what it
//! reports, so a crash in between re-reports into the same row. Delivery (`callback_delivery.rs`)
//! claims due rows with a lease, retries failures with exponential backoff and jitter on the
//! [`Clock`], and gives up after `max_attempts` (status `dead`).

use super::Queue;
use super::signature::SigningKey;
use crate::clock::Clock;
use crate::config::SecretString;
use crate::state::AppState;
use crate::store::Load;
use scim_graph_bridge::guard::GuardAlert;
use scim_graph_bridge::notify::{Settled, SettledOutcome};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Notify;

pub use super::callback_delivery::{Attempt, Background};
pub use super::callback_store::{Awaiting, DeliveryView};

/// `[[inbound.callbacks]]`: where one tenant's outcomes are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackConfig {
    /// The tenant whose outcomes are reported.
    pub tenant: String,
    /// The receiver (`https://…`; `http://` is accepted for loopback and test receivers).
    pub url: String,
    /// Signing secrets (`whsec_…`); every one signs each message (several while rotating).
    pub secrets: Vec<SecretString>,
    /// Attempts at a message before it is given up (status `dead`).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The first retry's delay in seconds; doubled per further attempt, with jitter.
    #[serde(default = "default_backoff_base")]
    pub backoff_base_seconds: u64,
    /// The longest retry delay in seconds.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_seconds: u64,
    /// Seconds to wait for the receiver's answer.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_max_attempts() -> u32 {
    8
}
fn default_backoff_base() -> u64 {
    10
}
fn default_backoff_max() -> u64 {
    3600
}
fn default_timeout() -> u64 {
    10
}

impl CallbackConfig {
    /// Checks the entry; the message names the field.
    pub fn check(&self) -> Result<(), String> {
        if self.tenant.trim().is_empty() {
            return Err("`tenant` must not be empty".into());
        }
        match url::Url::parse(&self.url) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
            _ => return Err(format!("`url`: {:?} is not an http(s) URL", self.url)),
        }
        if self.secrets.is_empty() {
            return Err("`secrets` needs at least one `whsec_…` secret".into());
        }
        for (i, s) in self.secrets.iter().enumerate() {
            SigningKey::parse(s.expose()).map_err(|why| format!("`secrets[{i}]`: {why}"))?;
        }
        for (key, value) in [
            ("max_attempts", u64::from(self.max_attempts)),
            ("backoff_base_seconds", self.backoff_base_seconds),
            ("timeout_seconds", self.timeout_seconds),
        ] {
            if value == 0 {
                return Err(format!("`{key}`: must be greater than 0"));
            }
        }
        if self.backoff_max_seconds < self.backoff_base_seconds {
            return Err("`backoff_max_seconds`: must be at least `backoff_base_seconds`".into());
        }
        Ok(())
    }

    /// The delay after failed attempt `attempt`: the base doubled per attempt, capped, scaled
    /// by a jitter factor in [0.5, 1] (`jitter` in [0, 1)) so messages that failed together
    /// spread out.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let doubled = self
            .backoff_base_seconds
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30));
        let capped = doubled.min(self.backoff_max_seconds) as f64;
        Duration::from_secs_f64(capped * (0.5 + jitter.clamp(0.0, 1.0) / 2.0))
    }
}

/// Checks `[[inbound.callbacks]]`: each entry, and one per tenant; errors name the entry.
pub fn validate(configs: &[CallbackConfig]) -> Result<(), String> {
    for (i, c) in configs.iter().enumerate() {
        c.check()
            .map_err(|why| format!("`inbound.callbacks[{i}]`: {why}"))?;
        if configs[..i].iter().any(|o| o.tenant == c.tenant) {
            return Err(format!(
                "`inbound.callbacks[{i}]`: tenant {:?} has a callback already",
                c.tenant
            ));
        }
    }
    Ok(())
}

/// A tenant's receiver, checked and with its keys decoded.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) config: CallbackConfig,
    pub(super) keys: Vec<SigningKey>,
}

/// The callbacks of one process: the outbox, the receivers and the signal that wakes delivery.
pub struct Callbacks {
    pub(super) db: Queue,
    pub(super) targets: Vec<Target>,
    follow_bridge: bool,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) http: reqwest::Client,
    pub(super) wake: Notify,
}

impl std::fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks")
            .field("tenants", &self.targets.len())
            .field("follow_bridge", &self.follow_bridge)
            .finish_non_exhaustive()
    }
}

/// How an intake job ended, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd<'a> {
    /// Every record is final.
    Finished,
    /// Given up after the configured attempts; the reason.
    Dead(&'a str),
}

impl Callbacks {
    /// Callbacks over `db` (a pool on the server's database) for `configs`. `follow_bridge`:
    /// the Graph bridge runs against this database, so users written by a job are reported
    /// again once it has settled them.
    pub fn new(
        db: Queue,
        configs: &[CallbackConfig],
        follow_bridge: bool,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        validate(configs).map_err(anyhow::Error::msg)?;
        let mut targets = Vec::new();
        for c in configs {
            targets.push(Target {
                config: c.clone(),
                keys: c
                    .secrets
                    .iter()
                    .filter_map(|s| SigningKey::parse(s.expose()).ok())
                    .collect(),
            });
        }
        Ok(Self {
            db,
            targets,
            follow_bridge,
            clock,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            wake: Notify::new(),
        })
    }

    /// For `serve` and `bridge run`: callbacks on the server's database when
    /// `[[inbound.callbacks]]` names any (`None` otherwise, or with an in-memory database).
    pub async fn open(
        config: &crate::config::Config,
        follow_bridge: bool,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        if config.inbound.callbacks.is_empty() {
            return Ok(None);
        }
        let lower = config.database_url.to_ascii_lowercase();
        if lower.contains(":memory:") || lower.contains("mode=memory") {
            tracing::warn!(
                "outcome callbacks off: they need a database file or PostgreSQL, not an in-memory database"
            );
            return Ok(None);
        }
        let db = super::open_queue(&config.database_url).await?;
        Ok(Some(Arc::new(Self::new(
            db,
            &config.inbound.callbacks,
            follow_bridge,
            clock,
        )?)))
    }

    pub(super) fn target(&self, tenant: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.config.tenant == tenant)
    }

    /// Wakes this process's delivery loop (a message was queued).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Reports an intake job of `tenant` (call before the job is marked finished or dead: the
    /// message's id is derived from the job and its end, so reporting again changes nothing).
    /// Users it created or updated are remembered for the bridge's report when the bridge runs.
    pub async fn job_settled(
        &self,
        state: &AppState,
        queue: &Queue,
        tenant: &str,
        job_id: &str,
        end: JobEnd<'_>,
    ) -> crate::store::Result<()> {
        if self.target(tenant).is_none() {
            return Ok(());
        }
        let Some(view) = queue.job(tenant, job_id).await? else {
            return Ok(());
        };
        let status = match end {
            JobEnd::Dead(_) => super::queue::status::DEAD,
            JobEnd::Finished if view.counts.failed > 0 => {
                super::queue::status::COMPLETED_WITH_ERRORS
            }
            JobEnd::Finished => super::queue::status::COMPLETED,
        };
        let event = view.source.strip_prefix("event:").map(|kind| {
            (
                kind.to_string(),
                view.operations.first().and_then(|o| o.bulk_id.clone()),
            )
        });
        let kind = match (&event, end) {
            (Some(_), JobEnd::Finished) => "event.applied",
            (Some(_), JobEnd::Dead(_)) => "event.failed",
            (None, JobEnd::Dead(_)) => "job.failed",
            (None, JobEnd::Finished) if view.counts.failed > 0 => "job.completedWithErrors",
            (None, JobEnd::Finished) => "job.completed",
        };
        let now = self.clock.now();
        let mut job = serde_json::to_value(&view).unwrap_or_default();
        job["status"] = json!(status);
        job["finished"] = json!(now.format(&Rfc3339).unwrap_or_default());
        if let JobEnd::Dead(why) = end {
            job["lastError"] = json!(why);
        }
        let mut data = json!({ "tenant": tenant, "job": job });
        if let Some((event_type, event_id)) = &event {
            data["event"] = json!({ "id": event_id, "type": event_type });
        }
        let id = format!("msg_job_{job_id}_{status}");
        let mut awaiting = Vec::new();
        if self.follow_bridge && end == JobEnd::Finished {
            let rt = state.registry.resource_type("User");
            for op in &view.operations {
                let (Some(user), Some(rt)) = (&op.id, rt) else {
                    continue;
                };
                if op.outcome != "created" && op.outcome != "updated" {
                    continue;
                }
                // the user as it is now: a plan computed from this version or a later one
                // reflects the job's write
                if let Some(r) = state.store.get(tenant, rt, user, Load::default()).await? {
                    awaiting.push(Awaiting {
                        user_id: user.clone(),
                        job_id: job_id.to_string(),
                        min_version: r.meta.version,
                        external_id: op.external_id.clone(),
                        event_id: event.as_ref().and_then(|(_, id)| id.clone()),
                    });
                }
            }
        }
        let body = envelope(kind, now, data);
        let queued = self
            .record_job(tenant, &id, kind, &body, &awaiting, now)
            .await?;
        tracing::info!(
            job_id,
            tenant,
            callback = kind,
            queued,
            "outcome callback queued"
        );
        self.notify();
        Ok(())
    }

    /// Reports a user's settled bridge plan to the jobs waiting for it (see
    /// [`Callbacks::job_settled`]); nothing for tenants without a callback.
    pub async fn bridge_settled(&self, s: &Settled) -> crate::store::Result<()> {
        if !self.follow_bridge || self.target(&s.tenant_id).is_none() {
            return Ok(());
        }
        let n = self.record_settled(s).await?;
        if n > 0 {
            self.notify();
        }
        Ok(())
    }

    /// Reports that the bridge started holding the tenant's leaver plans.
    pub async fn guard_tripped(&self, alert: &GuardAlert) -> crate::store::Result<()> {
        if self.target(&alert.tenant_id).is_none() {
            return Ok(());
        }
        let body = envelope(
            "guard.tripped",
            alert.at,
            json!({
                "tenant": alert.tenant_id,
                "holdId": alert.hold_id,
                "userId": alert.user_id,
                "reason": alert.reason,
            }),
        );
        self.enqueue(
            &alert.tenant_id,
            &format!("msg_guard_{}", alert.hold_id),
            "guard.tripped",
            &body,
            self.clock.now(),
        )
        .await?;
        self.notify();
        Ok(())
    }
}

/// The type of a bridge outcome message.
pub(super) fn settled_type(outcome: SettledOutcome) -> &'static str {
    match outcome {
        SettledOutcome::Applied => "provisioning.applied",
        SettledOutcome::Planned => "provisioning.planned",
        SettledOutcome::DeadLettered => "provisioning.deadLettered",
        SettledOutcome::Rejected => "provisioning.rejected",
    }
}

/// A bridge outcome message for one waiting job.
pub(super) fn settled_body(s: &Settled, waiting: &Awaiting, now: OffsetDateTime) -> String {
    let outcome = serde_json::to_value(s.outcome).unwrap_or_default();
    let mut data = json!({
        "tenant": s.tenant_id,
        "jobId": waiting.job_id,
        "userId": s.user_id,
        "externalId": waiting.external_id,
        "outcome": outcome,
        "planKind": s.kind,
        "steps": s.steps,
    });
    if let Some(event) = &waiting.event_id {
        data["eventId"] = json!(event);
    }
    if let Some(detail) = &s.detail {
        data["detail"] = json!(detail);
    }
    envelope(settled_type(s.outcome), now, data)
}

/// The Standard Webhooks payload shape: `{"type", "timestamp", "data"}`.
fn envelope(kind: &str, at: OffsetDateTime, data: Value) -> String {
    json!({
        "type": kind,
        "timestamp": at.format(&Rfc3339).unwrap_or_default(),
        "data": data,
    })
    .to_string()
}

/// The hook the intake worker calls before a job is marked finished or dead: reports it when
/// the server has callbacks.
pub async fn job_settled(
    state: &AppState,
    tenant: &str,
    job_id: &str,
    end: JobEnd<'_>,
) -> crate::store::Result<()> {
    match (&state.callbacks, &state.inbound) {
        (Some(callbacks), Some(intake)) => {
            callbacks
                .job_settled(state, &intake.queue, tenant, job_id, end)
                .await
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn callbacks_come_from_the_config_file_and_errors_name_the_key() {
        let secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let text = format!(
            "[[inbound.callbacks]]\ntenant = \"default\"\nurl = \"https://hr.example/hooks\"\nsecrets = [\"{secret}\"]\n"
        );
        let config = Config::from_parts(Some(&text), &[]).unwrap();
        let c = &config.inbound.callbacks[0];
        assert_eq!((c.max_attempts, c.backoff_base_seconds), (8, 10));
        assert!(
            !format!("{config:?}").contains(secret),
            "secrets are redacted"
        );
        // (file, words of the error)
        let cases = [
            (text.replace(secret, "whsec_%%"), "inbound.callbacks[0]"),
            (text.replace("https://hr.example/hooks", "ftp://x"), "`url`"),
            (text.replace(&format!("\"{secret}\""), ""), "at least one"),
            (format!("{text}max_attempts = 0\n"), "max_attempts"),
            (text.replace("url", "uri"), "uri"),
            (format!("{text}{text}"), "has a callback already"),
        ];
        for (file, words) in cases {
            let e = Config::from_parts(Some(&file), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(words), "{words}: {e}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let c = CallbackConfig {
            tenant: "t".into(),
            url: "https://x".into(),
            secrets: Vec::new(),
            max_attempts: 8,
            backoff_base_seconds: 10,
            backoff_max_seconds: 100,
            timeout_seconds: 10,
        };
        // (failed attempt, jitter, delay in seconds)
        for (attempt, jitter, want) in [
            (1, 0.0, 5.0),
            (1, 1.0, 10.0),
            (2, 0.5, 15.0),
            (4, 1.0, 80.0),
            (5, 1.0, 100.0),
            (40, 0.0, 50.0),
        ] {
            let got = c.backoff(attempt, jitter).as_secs_f64();
            assert!((got - want).abs() < 1e-9, "{attempt} {jitter}: {got}");
        }
    }
}
