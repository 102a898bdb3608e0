//! Leaver evidence: for each leaver, one record an auditor can read, fixed once the bridge has
//! fully revoked the account, and anchored in the tenant's change log.
//!
//! A record holds:
//! - the HR event, when the leaver came through the HR intake (`inbound_jobs` /
//!   `inbound_operations`): source, when it was received and when it took effect;
//! - the SCIM change that made the user a leaver (`active: false`, or the DELETE): its sequence
//!   number in the change log, time, principal and request id;
//! - when the bridge started on it, and every Graph step of the bridge's leaver plans (retries
//!   included) with its time, Graph's `request-id` and outcome;
//! - when revocation was complete, and how long that took from the HR event (or from the SCIM
//!   change when there was none).
//!
//! Once built, a record is stored as it is (`gov_leaver_evidence`, migration 0066) with the
//! SHA-256 of its JSON, and a `governance.leaver_evidence` event carrying that digest is
//! appended to the tenant's hash chain: `audit verify` proves the chain intact, and [`verify`]
//! proves each stored record still has the digest the chain holds. Exports (JSON, CSV, a
//! printable HTML page) read the stored records of a period.

use crate::governance::Governance;
use crate::governance::store::{Event, GovStore};
use crate::store::StoreError;
use crate::store::write_gate::SideWrites;
use scim_core::Error;
use scim_graph_bridge::graph::Outcome;
use scim_graph_bridge::on_pool;
use scim_graph_bridge::store::PlanRecord;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use time::OffsetDateTime;

type Result<T, E = Error> = std::result::Result<T, E>;

/// RFC 3339 text of a time (UTC, as every export writes times).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

fn db_error(e: sqlx::Error) -> Error {
    StoreError::Database(e).into()
}

/// The HR event behind a leaver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HrEvent {
    /// `bulkUpload`, or the event source's name.
    pub source: String,
    /// The intake job.
    pub job_id: String,
    /// When the intake received it.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: OffsetDateTime,
    /// When it was due to take effect (a scheduled termination), if later than received.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub effective_at: OffsetDateTime,
}

/// The SCIM change that made the user a leaver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScimChange {
    /// Its sequence number in the tenant's change log.
    pub seq: i64,
    /// `patch`, `replace` or `delete`.
    pub operation: String,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// Who wrote it (credential id).
    pub principal: String,
    /// The request id, when it came over HTTP.
    pub request_id: Option<String>,
    /// The record's hash in the chain.
    pub hash: String,
}

/// One Graph call of the bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceStep {
    /// The bridge's plan record.
    pub plan_id: String,
    /// `disable_account`, `revoke_sessions`, `remove_role`, `remove_group`,
    /// `assign_licenses`, `delete_user`.
    pub step: String,
    /// What it concerned (catalog name).
    pub target: String,
    /// When Graph answered.
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<OffsetDateTime>,
    /// Graph's `request-id`.
    pub request_id: Option<String>,
    /// `done`, `already_done` or `failed`.
    pub outcome: String,
    /// Graph's status and message for a failure, or why "already done".
    pub detail: Option<String>,
}

/// One leaver's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaverEvidence {
    /// Id.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The SCIM user.
    pub user_id: String,
    /// `userName`, as the bridge planned with it.
    pub user_name: Option<String>,
    /// The Graph user.
    pub graph_user_id: Option<String>,
    /// The HR event, if the leaver came through the HR intake.
    pub hr_event: Option<HrEvent>,
    /// The SCIM change.
    pub scim_change: Option<ScimChange>,
    /// When the bridge started on the leaver.
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub bridge_started_at: Option<OffsetDateTime>,
    /// Every Graph step, in order.
    pub steps: Vec<EvidenceStep>,
    /// When the last step of the complete plan was answered.
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub fully_revoked_at: Option<OffsetDateTime>,
    /// Seconds from the HR event (or the SCIM change) to full revocation.
    pub seconds_to_revocation: Option<i64>,
}

/// A stored record with its anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnchoredEvidence {
    /// The record.
    #[serde(flatten)]
    pub evidence: LeaverEvidence,
    /// Hex SHA-256 of the record's JSON as stored.
    pub digest: String,
    /// The sequence number of the `governance.leaver_evidence` event in the tenant's change
    /// log carrying the digest.
    pub chain_seq: Option<i64>,
    /// When the record was built.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub built_at: OffsetDateTime,
}

/// Hex SHA-256 of a record's JSON text.
pub fn digest(json: &str) -> String {
    hex::encode(Sha256::digest(json.as_bytes()))
}

fn outcome_parts(o: &Outcome) -> (String, Option<String>) {
    match o {
        Outcome::Done => ("done".into(), None),
        Outcome::AlreadyDone { reason } => ("already_done".into(), Some(reason.clone())),
        Outcome::Failed {
            http_status,
            code,
            message,
            ..
        } => (
            "failed".into(),
            Some(format!("{http_status} {code}: {message}")),
        ),
    }
}

/// The evidence of one leaver from the bridge's leaver plans (oldest first, the last one
/// complete), the SCIM change and the HR event (no I/O).
pub fn assemble(
    id: String,
    tenant: &str,
    plans: &[PlanRecord],
    scim_change: Option<ScimChange>,
    hr_event: Option<HrEvent>,
) -> Option<LeaverEvidence> {
    let last = plans.last()?;
    let mut steps = Vec::new();
    let mut started = None;
    for p in plans {
        let Some(report) = &p.report else { continue };
        started = started.or(report.started_at).or(Some(p.created_at));
        for s in &report.steps {
            let (outcome, detail) = outcome_parts(&s.outcome);
            steps.push(EvidenceStep {
                plan_id: p.id.clone(),
                step: s.step.clone(),
                target: s.target.clone(),
                at: s.at,
                request_id: s.request_id.clone(),
                outcome,
                detail,
            });
        }
    }
    let fully_revoked_at = last
        .report
        .as_ref()
        .and_then(|r| r.steps.iter().filter_map(|s| s.at).max())
        .or(Some(last.created_at));
    let origin = hr_event
        .as_ref()
        .map(|h| h.effective_at.max(h.received_at))
        .or(scim_change.as_ref().map(|c| c.at));
    Some(LeaverEvidence {
        id,
        tenant: tenant.to_string(),
        user_id: last.user_id.clone(),
        user_name: last.plan.desired.user_name.clone(),
        graph_user_id: last
            .report
            .as_ref()
            .and_then(|r| r.graph_user_id.clone())
            .or(last.plan.graph_user_id.clone()),
        hr_event,
        scim_change,
        bridge_started_at: started,
        steps,
        seconds_to_revocation: match (origin, fully_revoked_at) {
            (Some(o), Some(f)) => Some((f - o).whole_seconds().max(0)),
            _ => None,
        },
        fully_revoked_at,
    })
}

/// The tables evidence is built from and kept in, on the governance pool.
#[derive(Debug, Clone)]
pub struct EvidenceStore {
    pool: GovStore,
}

impl EvidenceStore {
    /// Evidence tables on `pool`.
    pub fn new(pool: GovStore) -> Self {
        Self { pool }
    }

    /// Whether evidence exists for the complete leaver plan `plan_id`.
    pub async fn has_plan(&self, tenant: &str, plan_id: &str) -> Result<bool> {
        on_pool!(&self.pool, |p| {
            Ok(sqlx::query(
                "SELECT 1 FROM gov_leaver_evidence WHERE tenant_id = $1 AND completed_plan_id = $2",
            )
            .bind(tenant)
            .bind(plan_id)
            .fetch_optional(p)
            .await
            .map_err(db_error)?
            .is_some())
        })
    }

    /// The user's newest resource write (not an event) at or before `before`: for a leaver,
    /// the change that made them one.
    pub async fn leaver_change(
        &self,
        tenant: &str,
        user: &str,
        before: OffsetDateTime,
    ) -> Result<Option<ScimChange>> {
        // Every committed write counts: on PostgreSQL a write's record is sealed just after its
        // commit, without the writer waiting (`store::seal`).
        if let GovStore::Postgres(pool) = &self.pool {
            crate::store::seal::seal_committed(pool).await?;
        }
        let rows = on_pool!(&self.pool, |p| {
            sqlx::query(
                "SELECT tenant_seq, operation, occurred_at, principal, request_id, hash \
                 FROM scim_changes WHERE tenant_id = $1 AND resource_type = 'User' \
                 AND resource_id = $2 AND operation IN ('create', 'replace', 'patch', 'delete') \
                 ORDER BY tenant_seq DESC LIMIT 50",
            )
            .bind(tenant)
            .bind(user)
            .fetch_all(p)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| {
                Ok::<_, Error>(ScimChange {
                    seq: r.try_get("tenant_seq").map_err(db_error)?,
                    operation: r.try_get("operation").map_err(db_error)?,
                    at: parse_rfc3339(&r.try_get::<String, _>("occurred_at").map_err(db_error)?)
                        .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    principal: r.try_get("principal").map_err(db_error)?,
                    request_id: r.try_get("request_id").map_err(db_error)?,
                    hash: r.try_get("hash").map_err(db_error)?,
                })
            })
            .collect::<Result<Vec<_>>>()?
        });
        Ok(rows.into_iter().find(|c| c.at <= before))
    }

    /// The HR intake job whose record wrote `change` (received before it, finished after it).
    pub async fn hr_event(
        &self,
        tenant: &str,
        user: &str,
        change: &ScimChange,
    ) -> Result<Option<HrEvent>> {
        let at_ns = change.at.unix_timestamp_nanos() as i64;
        on_pool!(&self.pool, |p| {
            let row = sqlx::query(
                "SELECT j.id, j.source, j.created_ns, j.run_after_ns FROM inbound_jobs j \
                 JOIN inbound_operations o ON o.job_id = j.id \
                 WHERE j.tenant_id = $1 AND o.resource_id = $2 AND o.outcome IN ('updated', 'created') \
                 AND j.created_ns <= $3 AND (j.finished_ns IS NULL OR j.finished_ns >= $4) \
                 AND j.principal = $5 ORDER BY j.created_ns DESC LIMIT 1",
            )
            .bind(tenant)
            .bind(user)
            .bind(at_ns)
            .bind(at_ns - 1_000_000_000)
            .bind(&change.principal)
            .fetch_optional(p)
            .await
            .map_err(db_error)?;
            let Some(r) = row else { return Ok(None) };
            let ns = |c: &str| -> Result<OffsetDateTime> {
                let v: i64 = r.try_get(c).map_err(db_error)?;
                Ok(OffsetDateTime::from_unix_timestamp_nanos(i128::from(v))
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH))
            };
            let received = ns("created_ns")?;
            Ok(Some(HrEvent {
                source: r.try_get("source").map_err(db_error)?,
                job_id: r.try_get("id").map_err(db_error)?,
                effective_at: ns("run_after_ns")?.max(received),
                received_at: received,
            }))
        })
    }

    /// Stores a built record with its digest; `false` when the plan has a record already.
    pub async fn insert(
        &self,
        evidence: &LeaverEvidence,
        completed_plan_id: &str,
        json: &str,
        digest: &str,
        built_at: OffsetDateTime,
    ) -> Result<bool> {
        on_pool!(&self.pool, |p| {
            let _turn = p.write_turn().await;
            let done = sqlx::query(
                "INSERT INTO gov_leaver_evidence (tenant_id, id, user_id, completed_plan_id, \
                 revoked_at_ms, built_at_ms, record_json, digest) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (tenant_id, completed_plan_id) DO NOTHING",
            )
            .bind(&evidence.tenant)
            .bind(&evidence.id)
            .bind(&evidence.user_id)
            .bind(completed_plan_id)
            .bind(
                evidence
                    .fully_revoked_at
                    .map(scim_graph_bridge::clock::to_millis),
            )
            .bind(scim_graph_bridge::clock::to_millis(built_at))
            .bind(json)
            .bind(digest)
            .execute(p)
            .await
            .map_err(db_error)?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Notes the chain record that anchors a record.
    pub async fn set_anchor(&self, tenant: &str, id: &str, seq: i64) -> Result<()> {
        on_pool!(&self.pool, |p| {
            let _turn = p.write_turn().await;
            sqlx::query(
                "UPDATE gov_leaver_evidence SET chain_seq = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(id)
            .bind(seq)
            .execute(p)
            .await
            .map_err(db_error)?;
            Ok(())
        })
    }

    /// Stored records of a tenant whose revocation completed in `[from, to)`, oldest first (at
    /// most 10,000).
    pub async fn list(
        &self,
        tenant: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<AnchoredEvidence>> {
        on_pool!(&self.pool, |p| {
            sqlx::query(
                "SELECT record_json, digest, chain_seq, built_at_ms FROM gov_leaver_evidence \
                 WHERE tenant_id = $1 AND revoked_at_ms >= $2 AND revoked_at_ms < $3 \
                 ORDER BY revoked_at_ms, id LIMIT 10000",
            )
            .bind(tenant)
            .bind(scim_graph_bridge::clock::to_millis(from))
            .bind(scim_graph_bridge::clock::to_millis(to))
            .fetch_all(p)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| {
                let json: String = r.try_get("record_json").map_err(db_error)?;
                Ok(AnchoredEvidence {
                    evidence: serde_json::from_str(&json).map_err(|e| {
                        Error::from(StoreError::Corrupt(format!("stored evidence: {e}")))
                    })?,
                    digest: r.try_get("digest").map_err(db_error)?,
                    chain_seq: r.try_get("chain_seq").map_err(db_error)?,
                    built_at: scim_graph_bridge::clock::from_millis(
                        r.try_get("built_at_ms").map_err(db_error)?,
                    ),
                })
            })
            .collect()
        })
    }

    /// Every stored record of a tenant as (id, record JSON, digest, chain seq), for [`verify`].
    pub async fn raw(&self, tenant: &str) -> Result<Vec<(String, String, String, Option<i64>)>> {
        on_pool!(&self.pool, |p| {
            sqlx::query(
                "SELECT id, record_json, digest, chain_seq FROM gov_leaver_evidence \
                 WHERE tenant_id = $1 ORDER BY built_at_ms, id",
            )
            .bind(tenant)
            .fetch_all(p)
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("id").map_err(db_error)?,
                    r.try_get("record_json").map_err(db_error)?,
                    r.try_get("digest").map_err(db_error)?,
                    r.try_get("chain_seq").map_err(db_error)?,
                ))
            })
            .collect()
        })
    }

    /// The digest the change-log event `seq` of `tenant` carries, if it is an evidence anchor.
    pub async fn anchored_digest(&self, tenant: &str, seq: i64) -> Result<Option<String>> {
        on_pool!(&self.pool, |p| {
            let row = sqlx::query(
                "SELECT change_json FROM scim_changes WHERE tenant_id = $1 AND tenant_seq = $2",
            )
            .bind(tenant)
            .bind(seq)
            .fetch_optional(p)
            .await
            .map_err(db_error)?;
            Ok(row
                .and_then(|r| r.try_get::<String, _>("change_json").ok())
                .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
                .and_then(|v| find_digest(&v)))
        })
    }
}

/// The `digest` string anywhere in an event's stored JSON (the event's detail).
fn find_digest(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Object(m) => m
            .get("digest")
            .and_then(|d| d.as_str().map(str::to_owned))
            .or_else(|| m.values().find_map(find_digest)),
        _ => None,
    }
}

/// A problem [`verify`] found.
pub type Problem = String;

/// Checks every stored record of `tenant`: its JSON still hashes to its digest, and the chain
/// event it names carries that digest. Empty when all is well.
pub async fn verify(store: &EvidenceStore, tenant: &str) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    for (id, json, stored, seq) in store.raw(tenant).await? {
        if digest(&json) != stored {
            problems.push(format!(
                "evidence {id}: the record no longer matches its digest"
            ));
            continue;
        }
        match seq {
            None => problems.push(format!("evidence {id}: not anchored in the change log")),
            Some(seq) => match store.anchored_digest(tenant, seq).await? {
                Some(d) if d == stored => {}
                _ => problems.push(format!(
                    "evidence {id}: change-log record {seq} does not carry its digest"
                )),
            },
        }
    }
    Ok(problems)
}

/// The period's records as CSV: one row per Graph step, the leaver's facts repeated.
pub fn to_csv(records: &[AnchoredEvidence]) -> String {
    use crate::governance::hygiene::csv_line;
    let mut out = csv_line(&[
        "evidence_id",
        "user_id",
        "user_name",
        "graph_user_id",
        "hr_source",
        "hr_received_at",
        "hr_effective_at",
        "scim_seq",
        "scim_changed_at",
        "bridge_started_at",
        "step",
        "target",
        "step_at",
        "graph_request_id",
        "outcome",
        "detail",
        "fully_revoked_at",
        "seconds_to_revocation",
        "digest",
        "chain_seq",
    ]);
    let t = |v: Option<OffsetDateTime>| v.map(rfc3339).unwrap_or_default();
    for r in records {
        let e = &r.evidence;
        let hr = e.hr_event.as_ref();
        let scim = e.scim_change.as_ref();
        let fixed = [
            e.id.clone(),
            e.user_id.clone(),
            e.user_name.clone().unwrap_or_default(),
            e.graph_user_id.clone().unwrap_or_default(),
            hr.map(|h| h.source.clone()).unwrap_or_default(),
            t(hr.map(|h| h.received_at)),
            t(hr.map(|h| h.effective_at)),
            scim.map(|c| c.seq.to_string()).unwrap_or_default(),
            t(scim.map(|c| c.at)),
            t(e.bridge_started_at),
        ];
        let tail = [
            t(e.fully_revoked_at),
            e.seconds_to_revocation
                .map(|s| s.to_string())
                .unwrap_or_default(),
            r.digest.clone(),
            r.chain_seq.map(|s| s.to_string()).unwrap_or_default(),
        ];
        let empty = EvidenceStep {
            plan_id: String::new(),
            step: String::new(),
            target: String::new(),
            at: None,
            request_id: None,
            outcome: String::new(),
            detail: None,
        };
        let steps: Vec<&EvidenceStep> = if e.steps.is_empty() {
            vec![&empty]
        } else {
            e.steps.iter().collect()
        };
        for s in steps {
            let step = [
                s.step.clone(),
                s.target.clone(),
                t(s.at),
                s.request_id.clone().unwrap_or_default(),
                s.outcome.clone(),
                s.detail.clone().unwrap_or_default(),
            ];
            let fields: Vec<&str> = fixed
                .iter()
                .chain(step.iter())
                .chain(tail.iter())
                .map(String::as_str)
                .collect();
            out.push_str(&csv_line(&fields));
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The period's records as a printable HTML page (one section per leaver, no script, styles
/// for print).
pub fn to_html(
    tenant: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
    records: &[AnchoredEvidence],
) -> String {
    let t = |v: Option<OffsetDateTime>| v.map(rfc3339).unwrap_or_else(|| "—".into());
    let mut out = String::new();
    out.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str(&format!(
        "<title>Leaver evidence {} {} – {}</title>",
        esc(tenant),
        rfc3339(from),
        rfc3339(to)
    ));
    out.push_str(
        "<style>body{font:11pt system-ui,sans-serif;margin:2em}table{border-collapse:collapse;\
         width:100%;margin:.5em 0 1.5em}th,td{border:1px solid #999;padding:.25em .4em;\
         text-align:left;vertical-align:top;font-size:9pt}section{break-inside:avoid}\
         code{font-size:8pt;word-break:break-all}</style></head><body>\n",
    );
    out.push_str(&format!(
        "<h1>Leaver evidence</h1><p>Tenant <strong>{}</strong>, revocations completed from {} \
         to {}: {} leaver(s). Each record's SHA-256 digest is anchored in the tenant's change \
         log (the record named); <code>scim-server audit verify</code> checks the chain and \
         <code>scim-server governance evidence verify</code> the digests.</p>\n",
        esc(tenant),
        rfc3339(from),
        rfc3339(to),
        records.len()
    ));
    for r in records {
        let e = &r.evidence;
        out.push_str(&format!(
            "<section><h2>{}</h2><table><tbody>",
            esc(e.user_name.as_deref().unwrap_or(&e.user_id))
        ));
        let mut row = |k: &str, v: String| {
            out.push_str(&format!(
                "<tr><th scope=\"row\">{k}</th><td>{}</td></tr>",
                esc(&v)
            ));
        };
        row("SCIM user", e.user_id.clone());
        row(
            "Graph user",
            e.graph_user_id.clone().unwrap_or_else(|| "—".into()),
        );
        row(
            "HR event",
            e.hr_event
                .as_ref()
                .map(|h| {
                    format!(
                        "{} job {}: received {}, effective {}",
                        h.source,
                        h.job_id,
                        rfc3339(h.received_at),
                        rfc3339(h.effective_at)
                    )
                })
                .unwrap_or_else(|| "none (not through the HR intake)".into()),
        );
        row(
            "SCIM change",
            e.scim_change
                .as_ref()
                .map(|c| {
                    format!(
                        "#{} {} at {} by {}{}",
                        c.seq,
                        c.operation,
                        rfc3339(c.at),
                        c.principal,
                        c.request_id
                            .as_ref()
                            .map(|r| format!(" (request {r})"))
                            .unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "—".into()),
        );
        row("Bridge started", t(e.bridge_started_at));
        row("Fully revoked", t(e.fully_revoked_at));
        row(
            "Time to revocation",
            e.seconds_to_revocation
                .map(|s| format!("{s} s"))
                .unwrap_or_else(|| "—".into()),
        );
        row(
            "Anchor",
            format!(
                "change-log record {}, SHA-256 {}",
                r.chain_seq
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "(pending)".into()),
                r.digest
            ),
        );
        out.push_str(
            "</tbody></table><table><thead><tr><th scope=\"col\">Step</th>\
             <th scope=\"col\">Target</th><th scope=\"col\">Time</th><th scope=\"col\">Outcome</th>\
             <th scope=\"col\">Graph request id</th></tr></thead><tbody>",
        );
        for s in &e.steps {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td><code>{}</code></td></tr>",
                esc(&s.step),
                esc(&s.target),
                esc(&t(s.at)),
                esc(&s.outcome),
                s.detail
                    .as_ref()
                    .map(|d| format!(": {}", esc(d)))
                    .unwrap_or_default(),
                esc(s.request_id.as_deref().unwrap_or("—"))
            ));
        }
        out.push_str("</tbody></table></section>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// How far back [`build_pending`] looks for completed leavers without evidence.
pub const BUILD_LOOKBACK_DAYS: i64 = 30;

fn evidence_store(gov: &Governance) -> EvidenceStore {
    EvidenceStore::new(gov.store.clone())
}

/// The bridge's leaver plans of one leaver, oldest first, ending with `completed`: the
/// attempts before it that did not complete (retries after a failure), back to the previous
/// complete leaver plan or the last plan of another kind.
fn leaver_run(newest_first: &[PlanRecord], completed: &PlanRecord) -> Vec<PlanRecord> {
    let mut run = vec![completed.clone()];
    let Some(pos) = newest_first.iter().position(|p| p.id == completed.id) else {
        return run;
    };
    for p in &newest_first[pos + 1..] {
        let leaver = serde_json::to_value(p.plan.kind)
            .ok()
            .is_some_and(|k| k == "leaver");
        if !leaver || p.mode != "apply" || p.status == "applied" || p.status == "noop" {
            break;
        }
        run.push(p.clone());
    }
    run.reverse();
    run
}

/// Builds, stores and anchors the evidence of every leaver whose revocation the bridge
/// completed in the last [`BUILD_LOOKBACK_DAYS`] days and who has none yet; returns how many
/// records were made. Nothing without the bridge (there is no Graph step to show).
pub async fn build_pending(gov: &Governance, tenant: Option<&str>) -> Result<usize> {
    let Some(bridge) = &gov.bridge else {
        return Ok(0);
    };
    let now = gov.clock.now();
    let plans = bridge
        .store
        .leaver_plans(
            tenant,
            now - time::Duration::days(BUILD_LOOKBACK_DAYS),
            now + time::Duration::seconds(1),
            1000,
        )
        .await
        .map_err(|e| Error::new(503, None, format!("reading the bridge's plans: {e}")))?;
    let store = evidence_store(gov);
    let mut made = 0;
    for completed in plans.iter().filter(|p| p.status == "applied") {
        let t = completed.tenant_id.as_str();
        if store.has_plan(t, &completed.id).await? {
            continue;
        }
        let history = bridge
            .store
            .plans_for_user(t, &completed.user_id, 50)
            .await
            .map_err(|e| Error::new(503, None, format!("reading the bridge's plans: {e}")))?;
        let run = leaver_run(&history, completed);
        let started = run
            .first()
            .and_then(|p| p.report.as_ref().and_then(|r| r.started_at))
            .unwrap_or(run[0].created_at);
        let scim_change = store.leaver_change(t, &completed.user_id, started).await?;
        let hr_event = match &scim_change {
            Some(c) => store.hr_event(t, &completed.user_id, c).await?,
            None => None,
        };
        let Some(record) = assemble(
            uuid::Uuid::new_v4().to_string(),
            t,
            &run,
            scim_change,
            hr_event,
        ) else {
            continue;
        };
        let json = serde_json::to_string(&record)
            .map_err(|e| Error::from(StoreError::Corrupt(format!("evidence: {e}"))))?;
        let digest = digest(&json);
        if !store
            .insert(&record, &completed.id, &json, &digest, now)
            .await?
        {
            continue;
        }
        if let Some(seq) = anchor(gov, &record, &digest).await? {
            store.set_anchor(t, &record.id, seq).await?;
        }
        gov.store
            .record(&[Event::new(
                t,
                now,
                "evidence.recorded",
                &record.id,
                "governance",
                serde_json::json!({"user": record.user_id, "digest": digest,
                                   "plan": completed.id}),
            )])
            .await?;
        made += 1;
    }
    Ok(made)
}

/// Appends the `governance.leaver_evidence` event carrying `digest` to the tenant's change log;
/// its sequence number.
async fn anchor(gov: &Governance, record: &LeaverEvidence, digest: &str) -> Result<Option<i64>> {
    let ctx = crate::service::write::Writer::acting_for(
        record.tenant.clone(),
        "governance:evidence",
        None,
    )
    .context(gov.clock.now());
    let event = scim_core::change_log::AuditEvent::new(
        "governance.leaver_evidence",
        "User",
        &record.user_id,
        serde_json::json!({"evidence": record.id, "digest": digest}),
    )?;
    let seq = gov.scim.append_event(&ctx, &event).await?;
    Ok(i64::try_from(seq).ok())
}

/// What the schedule worker does besides its entries: builds the evidence of leavers the bridge
/// completed, and publishes the time-bound grant counts on `/metrics`. Failures are logged and
/// tried again on the next pass.
pub async fn upkeep(gov: &Governance) {
    if let Err(e) = build_pending(gov, None).await {
        tracing::warn!(error = %e.detail(), "building leaver evidence failed");
    }
    match crate::governance::jit::JitStore::new(gov.store.clone())
        .counts()
        .await
    {
        Ok(counts) => {
            for status in ["pending", "active", "denied", "expired", "revoked"] {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == status)
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!(crate::metrics::GOV_JIT_GRANTS, "status" => status).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e.detail(), "counting time-bound grants failed"),
    }
}

/// The stored evidence of `tenant` for revocations completed in `[from, to)`, after building
/// what is pending.
pub async fn export(
    gov: &Governance,
    tenant: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<AnchoredEvidence>> {
    if to <= from {
        return Err(Error::invalid_value("to: must be after from"));
    }
    build_pending(gov, Some(tenant)).await?;
    evidence_store(gov).list(tenant, from, to).await
}

/// [`verify`] for a tenant of `gov`.
pub async fn verify_tenant(gov: &Governance, tenant: &str) -> Result<Vec<Problem>> {
    verify(&evidence_store(gov), tenant).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_and_csv_has_a_row_per_step() {
        let now = time::macros::datetime!(2026-01-01 10:00 UTC);
        let e = LeaverEvidence {
            id: "ev1".into(),
            tenant: "default".into(),
            user_id: "u1".into(),
            user_name: Some("<script>x</script>".into()),
            graph_user_id: Some("g1".into()),
            hr_event: None,
            scim_change: None,
            bridge_started_at: Some(now),
            steps: vec![
                EvidenceStep {
                    plan_id: "p1".into(),
                    step: "disable_account".into(),
                    target: String::new(),
                    at: Some(now),
                    request_id: Some("r1".into()),
                    outcome: "done".into(),
                    detail: None,
                },
                EvidenceStep {
                    plan_id: "p1".into(),
                    step: "remove_group".into(),
                    target: "eng".into(),
                    at: Some(now),
                    request_id: Some("r2".into()),
                    outcome: "done".into(),
                    detail: None,
                },
            ],
            fully_revoked_at: Some(now),
            seconds_to_revocation: Some(3),
        };
        let json = serde_json::to_string(&e).unwrap();
        let rec = AnchoredEvidence {
            evidence: e,
            digest: digest(&json),
            chain_seq: Some(7),
            built_at: now,
        };
        let html = to_html("default", now, now, std::slice::from_ref(&rec));
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script>"),
            "{html}"
        );
        assert!(html.contains("change-log record 7"));
        let csv = to_csv(&[rec]);
        assert_eq!(csv.lines().count(), 3, "{csv}");
        assert!(csv.contains(",remove_group,eng,"), "{csv}");
    }

    #[test]
    fn digests_are_found_in_event_details() {
        let v =
            serde_json::json!({"kind": "governance.leaver_evidence", "detail": {"digest": "ab"}});
        assert_eq!(find_digest(&v).as_deref(), Some("ab"));
        assert_eq!(find_digest(&serde_json::json!({"x": 1})), None);
    }
}
