//! Telling people what waits for them: reviewers of pending items and reminders, through
//! webhooks signed per Standard Webhooks (the signing of [`crate::inbound::signature`], so a
//! receiver verifies them as this server verifies HR events) and, when `[governance.smtp]` is
//! set, e-mail over SMTP.
//!
//! A webhook body follows the Standard Webhooks payload shape: `{"type", "timestamp", "data"}`;
//! the headers are `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
//! (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`).
//!
//! The SMTP client is deliberately small: RFC 5321 §3.3 (EHLO, MAIL FROM, RCPT TO, DATA with
//! dot-stuffing per §4.5.2, QUIT), plain text UTF-8, for a relay on the local network (a
//! smarthost or a mail sidecar) that accepts mail from this host; no STARTTLS or AUTH.

use crate::inbound::signature::SigningKey;
use scim_graph_bridge::secret::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// `[[governance.webhooks]]`: one receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST (`https://…`, or `http://` on loopback).
    pub url: String,
    /// The shared secret, `whsec_<base64>` (at least 16 bytes).
    pub secret: SecretString,
}

impl WebhookConfig {
    pub(crate) fn check(&self) -> Result<(), String> {
        match url::Url::parse(&self.url) {
            Ok(u) if u.scheme() == "https" => {}
            Ok(u)
                if u.scheme() == "http"
                    && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) => {}
            _ => return Err("`url`: must be an https:// URL (http:// only on loopback)".into()),
        }
        SigningKey::parse(self.secret.expose()).map_err(|e| format!("`secret`: {e}"))?;
        Ok(())
    }
}

/// `[governance.smtp]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The relay's host name or address.
    pub host: String,
    /// Its port (25, or 587 for a submission relay that accepts this host without AUTH).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// The sender address, e.g. `governance@example.com`.
    pub from: String,
    /// Seconds before a conversation is given up.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_seconds: u64,
}

fn default_smtp_port() -> u16 {
    25
}

fn default_smtp_timeout() -> u64 {
    10
}

impl SmtpConfig {
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.host.trim().is_empty() {
            return Err(("host", "must not be empty".into()));
        }
        if !plausible_address(&self.from) {
            return Err((
                "from",
                "must be an e-mail address such as governance@example.com".into(),
            ));
        }
        if self.timeout_seconds == 0 {
            return Err(("timeout_seconds", "must be greater than 0".into()));
        }
        Ok(())
    }
}

/// Whether `s` looks like an address we can put in `MAIL FROM:<…>` / `RCPT TO:<…>`: one `@`,
/// both sides non-empty, no spaces, angle brackets or control characters.
pub fn plausible_address(s: &str) -> bool {
    let ok_chars = !s
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ','));
    matches!(s.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@'))
        && ok_chars
}

/// A person's name and e-mail from a SCIM user: its `userName`, and its primary (or first)
/// e-mail, else the `userName` when that is an address.
pub fn contact(user: &Value) -> (String, Option<String>) {
    let name = user["userName"].as_str().unwrap_or_default().to_string();
    let emails = user["emails"].as_array().cloned().unwrap_or_default();
    let email = emails
        .iter()
        .find(|e| e["primary"].as_bool() == Some(true))
        .or_else(|| emails.first())
        .and_then(|e| e["value"].as_str().map(str::to_owned))
        .or_else(|| name.contains('@').then(|| name.clone()));
    (name, email)
}

/// Something to tell one person.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// `review.assigned` or `review.reminder`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Tenant.
    pub tenant: String,
    /// The person (a SCIM userName or a named reviewer).
    pub recipient: String,
    /// Where they get e-mail, if known.
    pub email: Option<String>,
    /// The review.
    pub review_id: String,
    /// Its name.
    pub review_name: String,
    /// Items waiting for their decision.
    pub pending_items: usize,
    /// When the review is due.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// Where to decide, when configured.
    pub review_url: Option<String>,
}

/// A time-bound grant waiting for a decision, told to one person who may approve it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequest {
    /// `jit.approval_requested`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Tenant.
    pub tenant: String,
    /// The person who may approve (a SCIM userName).
    pub recipient: String,
    /// Where they get e-mail, if known.
    pub email: Option<String>,
    /// The grant request's id (what `POST /governance/v1/grants/{id}/approve` names).
    pub grant_id: String,
    /// The catalog grant, `kind:name`.
    pub grant: String,
    /// Who would hold it (a SCIM userName, else the id).
    pub user: String,
    /// For how long, ISO 8601.
    pub duration: String,
    /// Why, as the requester wrote it.
    pub justification: String,
}

/// How one delivery went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// `webhook` or `email`.
    pub channel: String,
    /// The URL or address.
    pub target: String,
    /// Delivered.
    pub ok: bool,
    /// The failure, if any.
    pub detail: Option<String>,
}

/// Sends notifications over the configured channels.
#[derive(Debug, Clone)]
pub struct Notifier {
    webhooks: Vec<(String, SigningKey)>,
    smtp: Option<SmtpConfig>,
    http: reqwest::Client,
}

impl Notifier {
    /// From `[governance]` (already validated).
    pub fn new(config: &super::GovernanceConfig) -> anyhow::Result<Self> {
        let webhooks = config
            .webhooks
            .iter()
            .map(|w| {
                SigningKey::parse(w.secret.expose())
                    .map(|k| (w.url.clone(), k))
                    .map_err(|e| anyhow::anyhow!("`governance.webhooks`: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            webhooks,
            smtp: config.smtp.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    /// Delivers `n` to every webhook and, with SMTP and an address, by e-mail. Failures are
    /// reported, never raised: a notification is not worth failing a review over.
    pub async fn send(&self, n: &Notification, now: OffsetDateTime) -> Vec<Delivery> {
        let data = serde_json::to_value(n).unwrap_or_default();
        self.deliver(&n.kind, data, n.email.as_deref(), subject(n), text(n), now)
            .await
    }

    /// Tells a possible approver of a time-bound grant waiting for a decision, on the same
    /// channels as reviews.
    pub async fn send_approval(&self, a: &ApprovalRequest, now: OffsetDateTime) -> Vec<Delivery> {
        let data = serde_json::to_value(a).unwrap_or_default();
        let subject = format!(
            "Time-bound access request: {} for {} ({})",
            a.grant, a.user, a.duration
        );
        let text = format!(
            "Hello {},\r\n\r\n{} asks for {} for {} (request {}).\r\nJustification: {}\r\n\r\n\
             Approve or deny it: scim-server governance grant approve|deny {} --approver YOU, or \
             POST /governance/v1/grants/{}/approve.\r\n",
            a.recipient,
            a.user,
            a.grant,
            a.duration,
            a.grant_id,
            a.justification,
            a.grant_id,
            a.grant_id
        );
        self.deliver(&a.kind, data, a.email.as_deref(), subject, text, now)
            .await
    }

    async fn deliver(
        &self,
        kind: &str,
        data: Value,
        email: Option<&str>,
        subject: String,
        text: String,
        now: OffsetDateTime,
    ) -> Vec<Delivery> {
        let mut out = Vec::new();
        let body = json!({
            "type": kind,
            "timestamp": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "data": data,
        })
        .to_string();
        for (url, key) in &self.webhooks {
            let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
            let ts = now.unix_timestamp();
            let result = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", key.sign(&id, ts, body.as_bytes()))
                .body(body.clone())
                .send()
                .await;
            let failure = match result {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("answered {}", r.status())),
                Err(e) => Some(e.without_url().to_string()),
            };
            out.push(Delivery {
                channel: "webhook".into(),
                target: url.clone(),
                ok: failure.is_none(),
                detail: failure,
            });
        }
        if let (Some(smtp), Some(to)) = (&self.smtp, email) {
            let failure = match plausible_address(to) {
                false => Some("not an e-mail address".to_string()),
                true => send_mail(smtp, to, &subject, &text, now)
                    .await
                    .err()
                    .map(|e| e.to_string()),
            };
            out.push(Delivery {
                channel: "email".into(),
                target: to.to_string(),
                ok: failure.is_none(),
                detail: failure,
            });
        }
        out
    }
}

fn subject(n: &Notification) -> String {
    match n.kind.as_str() {
        "review.reminder" => format!(
            "Reminder: access review \"{}\" needs your decisions",
            n.review_name
        ),
        _ => format!(
            "Access review \"{}\": {} item(s) to review",
            n.review_name, n.pending_items
        ),
    }
}

fn text(n: &Notification) -> String {
    let due = n
        .due_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut t = format!(
        "Hello {},\r\n\r\nThe access review \"{}\" (id {}) has {} item(s) waiting for your \
         decision: keep or revoke each person's access, with a justification.\r\n\r\nIt is due \
         {due}; items left undecided then take the campaign's default decision.\r\n",
        n.recipient, n.review_name, n.review_id, n.pending_items
    );
    if let Some(url) = &n.review_url {
        t.push_str(&format!("\r\nReview here: {url}\r\n"));
    }
    t
}

/// An RFC 2047 encoded-word for a header value that is not plain ASCII.
fn header_text(s: &str) -> String {
    use base64::Engine;
    if s.is_ascii() && !s.contains(['\r', '\n']) {
        s.to_string()
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s.replace(['\r', '\n'], " "))
        )
    }
}

/// One SMTP conversation delivering a plain-text message to `to`.
pub async fn send_mail(
    smtp: &SmtpConfig,
    to: &str,
    subject: &str,
    body: &str,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(smtp.timeout_seconds);
    tokio::time::timeout(timeout, conversation(smtp, to, subject, body, now))
        .await
        .map_err(|_| anyhow::anyhow!("the SMTP relay did not answer within {timeout:?}"))?
}

async fn conversation(
    smtp: &SmtpConfig,
    to: &str,
    subject: &str,
    body: &str,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect((smtp.host.as_str(), smtp.port)).await?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, 220).await?;
    let domain = smtp.from.split('@').nth(1).unwrap_or("localhost");
    command(&mut write, &mut read, &format!("EHLO {domain}"), 250).await?;
    command(
        &mut write,
        &mut read,
        &format!("MAIL FROM:<{}>", smtp.from),
        250,
    )
    .await?;
    command(&mut write, &mut read, &format!("RCPT TO:<{to}>"), 250).await?;
    command(&mut write, &mut read, "DATA", 354).await?;
    let date = now
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let mut message = format!(
        "From: {}\r\nTo: {to}\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: <{}@{domain}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n",
        smtp.from,
        header_text(subject),
        uuid::Uuid::new_v4().simple()
    );
    // RFC 5321 §4.5.2: a line starting with "." gets another "."; lines end in CRLF.
    for line in body.replace("\r\n", "\n").split('\n') {
        if line.starts_with('.') {
            message.push('.');
        }
        message.push_str(line);
        message.push_str("\r\n");
    }
    message.push_str(".\r\n");
    write.write_all(message.as_bytes()).await?;
    expect(&mut read, 250).await?;
    write.write_all(b"QUIT\r\n").await?;
    let _ = expect(&mut read, 221).await;
    Ok(())
}

async fn command<R: tokio::io::AsyncBufRead + Unpin>(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    read: &mut R,
    line: &str,
    code: u16,
) -> anyhow::Result<()> {
    write.write_all(format!("{line}\r\n").as_bytes()).await?;
    expect(read, code).await
}

/// Reads a (possibly multi-line, `250-…`) reply and checks its code.
async fn expect<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R, code: u16) -> anyhow::Result<()> {
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            anyhow::bail!("the SMTP relay closed the connection");
        }
        let got: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        if got != code && !(code == 250 && got == 251) {
            anyhow::bail!("the SMTP relay answered {:?}", line.trim_end());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

/// The JSON form of deliveries, for the event record.
pub fn deliveries_json(d: &[Delivery]) -> Value {
    serde_json::to_value(d).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for (s, ok) in [
            ("a@b.example", true),
            ("a b@c", false),
            ("<a@b>", false),
            ("ab", false),
            ("@b", false),
            ("a@", false),
            ("a@b@c", false),
        ] {
            assert_eq!(plausible_address(s), ok, "{s}");
        }
    }

    #[test]
    fn non_ascii_subjects_are_encoded() {
        assert_eq!(header_text("Quarterly"), "Quarterly");
        assert!(header_text("Revue trimestrielle é").starts_with("=?utf-8?B?"));
        assert!(!header_text("a\r\nBcc: x@y").contains('\n'));
    }
}
