//! HR events: `POST /inbound/v1/events/{tenant}/{source}` with a body
//! `{"id", "type": "hire"|"update"|"terminate"|"rehire", "effective"?: RFC 3339, "employee": {…}}`,
//! signed per Standard Webhooks with a secret of that tenant's source, the employee's HR fields
//! mapped to a SCIM user by the source's mapping file.
//!
//! An event becomes jobs of the intake queue, recorded with the event id in one transaction (a
//! replayed id changes nothing), some scheduled at the effective time:
//!
//! | type | effective now or past | effective in the future |
//! |---|---|---|
//! | `hire`, `rehire` | the record, active | the record now, inactive (pre-hire); activation at the start |
//! | `update` | the record | the record at that time |
//! | `terminate` | deactivation | deactivation at that time |
//!
//! Jobs are in one of two lanes per employee, `lifecycle` (activation, deactivation) and
//! `update`; a later event supersedes the employee's pending jobs in the lanes it uses (a
//! termination moved to another date replaces the first one).

use super::mapping::Mapping;
use super::queue::{EventReceipt, NewJob, NewOperation, ScheduledJob};
use super::signature::{self, SigningKey};
use crate::config::SecretString;
use crate::state::AppState;
use scim_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::PathBuf;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `[[inbound.sources]]`: one HR system allowed to post events for one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The tenant the events write to.
    pub tenant: String,
    /// The source's name, the last segment of its URL (`workday`, `bamboohr`, …).
    pub source: String,
    /// Its signing secrets (`whsec_…`); several while rotating.
    pub secrets: Vec<SecretString>,
    /// The mapping file (HR field -> SCIM path).
    pub mapping: PathBuf,
}

impl SourceConfig {
    /// Checks what can be checked without reading the mapping file.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.tenant.trim().is_empty() || self.source.trim().is_empty() {
            return Err("`tenant` and `source` must not be empty".into());
        }
        if !self
            .source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("`source` is a URL segment: letters, digits, `-` and `_`".into());
        }
        if self.secrets.is_empty() {
            return Err("`secrets` needs at least one `whsec_…` secret".into());
        }
        for (i, s) in self.secrets.iter().enumerate() {
            SigningKey::parse(s.expose()).map_err(|why| format!("`secrets[{i}]`: {why}"))?;
        }
        Ok(())
    }

    /// Reads the mapping file and decodes the secrets.
    pub fn load(&self) -> anyhow::Result<Source> {
        self.check().map_err(anyhow::Error::msg)?;
        let text = std::fs::read_to_string(&self.mapping).map_err(|e| {
            anyhow::anyhow!("`mapping`: cannot read {}: {e}", self.mapping.display())
        })?;
        let mapping = Mapping::parse(&text)
            .map_err(|e| anyhow::anyhow!("`mapping` {}: {e}", self.mapping.display()))?;
        Ok(Source {
            tenant: self.tenant.clone(),
            name: self.source.clone(),
            keys: self
                .secrets
                .iter()
                .filter_map(|s| SigningKey::parse(s.expose()).ok())
                .collect(),
            mapping,
        })
    }
}

/// A loaded event source.
#[derive(Debug, Clone)]
pub struct Source {
    /// The tenant.
    pub tenant: String,
    /// The source's name.
    pub name: String,
    /// Its signing keys.
    pub keys: Vec<SigningKey>,
    /// Its mapping.
    pub mapping: Mapping,
}

/// The Standard Webhooks headers of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signed<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
}

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventReply {
    /// The event id.
    pub event: String,
    /// Whether it had been received before (then nothing was queued).
    pub duplicate: bool,
    /// The jobs queued, with the time each runs.
    pub jobs: Vec<ScheduledView>,
}

/// A queued job of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledView {
    /// Job id (`GET /inbound/v1/jobs/{id}`).
    pub id: String,
    /// When it runs.
    #[serde(with = "time::serde::rfc3339")]
    pub run_after: OffsetDateTime,
}

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    effective: Option<String>,
    employee: serde_json::Map<String, Value>,
}

/// Verifies, parses and queues one HR event for `tenant`'s source `source`. An unknown source or
/// a bad signature is 401 and changes nothing.
pub async fn accept_event(
    state: &AppState,
    tenant: &str,
    source: &str,
    signed: Signed<'_>,
    body: &[u8],
) -> Result<EventReply> {
    let intake = super::intake_of(state)?;
    let refused = |detail: String| Error::unauthorized(detail);
    let src = intake.source(tenant, source).ok_or_else(|| {
        refused(format!(
            "no HR event source {source:?} is configured for this tenant"
        ))
    })?;
    let now = state.clock.now();
    signature::verify(
        &src.keys,
        signed.id,
        signed.timestamp,
        signed.signature,
        body,
        now,
    )
    .map_err(|e| refused(e.0))?;
    if let Err(seconds) = intake.check_event_rate(tenant, source) {
        return Err(Error::too_many_requests(format!(
            "too many events from source {source:?} (`inbound.events_per_second`); retry after \
             {seconds} s"
        )));
    }
    let event: Event = serde_json::from_slice(body).map_err(|e| {
        Error::invalid_syntax(format!(
            "an HR event is {{\"id\", \"type\", \"effective\"?, \"employee\"}}: {e}"
        ))
    })?;
    if event.id.trim().is_empty() {
        return Err(Error::invalid_value("the event `id` must not be empty"));
    }
    let effective = match &event.effective {
        Some(text) => OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
            Error::invalid_value(format!("`effective` {text:?} is not an RFC 3339 time"))
        })?,
        None => now,
    };
    let user = src.mapping.apply(&event.employee)?;
    let external = super::upsert::external_id(&user).map_err(|_| {
        Error::invalid_value(
            "the employee has no value for the field the mapping turns into `externalId`",
        )
    })?;
    let future = effective > now;
    let principal = format!("hr-events:{source}");
    let job = |data: Value, run_after: OffsetDateTime, lane: &'static str| ScheduledJob {
        job: NewJob {
            id: uuid::Uuid::new_v4().to_string(),
            tenant: tenant.to_string(),
            principal: principal.clone(),
            request_id: signed.id.map(str::to_string),
            source: format!("event:{}", event.kind),
            operations: vec![NewOperation {
                bulk_id: Some(event.id.clone()),
                external_id: Some(external.clone()),
                data,
            }],
        },
        run_after,
        subject: external.clone(),
        lane,
    };
    let with_active = |active: bool| {
        let mut u = user.clone();
        u["active"] = Value::Bool(active);
        u
    };
    let switch = |active: bool| json!({ "externalId": external, "active": active });
    let jobs = match event.kind.as_str() {
        "hire" | "rehire" if future => vec![
            job(with_active(false), now, "update"),
            job(switch(true), effective, "lifecycle"),
        ],
        "hire" | "rehire" => vec![job(with_active(true), now, "lifecycle")],
        "update" => vec![job(user.clone(), effective.max(now), "update")],
        "terminate" => vec![job(switch(false), effective.max(now), "lifecycle")],
        other => {
            return Err(Error::invalid_value(format!(
                "event type {other:?} is not one of hire, update, terminate, rehire"
            )));
        }
    };
    let receipt = intake
        .queue
        .enqueue_event(tenant, source, &event.id, &event.kind, &jobs, now)
        .await?;
    let duplicate = receipt == EventReceipt::Duplicate;
    if duplicate {
        tracing::info!(event_id = %event.id, "HR event replayed; nothing queued");
    } else {
        tracing::info!(event_id = %event.id, event_type = %event.kind, jobs = jobs.len(), "HR event queued");
        intake.notify();
    }
    Ok(EventReply {
        event: event.id,
        duplicate,
        jobs: if duplicate {
            Vec::new()
        } else {
            jobs.iter()
                .map(|j| ScheduledView {
                    id: j.job.id.clone(),
                    run_after: j.run_after,
                })
                .collect()
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn sources_come_from_the_config_file_and_errors_name_the_key() {
        let secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let text = format!(
            "[[inbound.sources]]\ntenant = \"default\"\nsource = \"workday\"\nsecrets = [\"{secret}\"]\nmapping = \"/etc/scim/workday.toml\"\n"
        );
        let config = Config::from_parts(Some(&text), &[]).unwrap();
        assert_eq!(config.inbound.sources[0].source, "workday");
        assert!(
            !format!("{config:?}").contains(secret),
            "secrets are redacted"
        );
        // (file, words of the error)
        let cases = [
            (text.replace(secret, "whsec_%%"), "inbound.sources[0]"),
            (text.replace("\"workday\"", "\"work day\""), "URL segment"),
            (text.replace(&format!("\"{secret}\""), ""), "at least one"),
            (text.replace("mapping", "mappings"), "mappings"),
        ];
        for (file, words) in cases {
            let e = Config::from_parts(Some(&file), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(words), "{e}");
        }
    }
}
