//! Client-credentials tokens (secret or certificate assertion), cached and
//! refreshed before expiry, single-flight.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::GraphError;
use crate::clock::Clock;
use crate::secret::SecretString;

/// The credential the bridge authenticates with.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Credential {
    /// A client secret.
    Secret(SecretString),
    /// A certificate (PEM) and its RSA private key (PEM), for a signed client assertion.
    Certificate {
        /// The certificate in PEM.
        cert_pem: String,
        /// The private key in PEM (redacted in `Debug`).
        key_pem: SecretString,
    },
}

/// The scope requested: all application permissions on Graph.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Refresh this long before the token expires.
const REFRESH_SKEW: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

/// Obtains and caches access tokens.
pub struct TokenSource {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    credential: Credential,
    clock: Arc<dyn Clock>,
    cache: tokio::sync::Mutex<Option<(String, OffsetDateTime)>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A token source for `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn new(
        http: reqwest::Client,
        authority_url: &str,
        tenant: &str,
        client_id: &str,
        credential: Credential,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            token_url: format!(
                "{}/{}/oauth2/v2.0/token",
                authority_url.trim_end_matches('/'),
                tenant
            ),
            client_id: client_id.to_owned(),
            credential,
            clock,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// A valid token: the cached one, or a fresh one when it is near expiry or `force` is set.
    pub async fn token(&self, force: bool) -> Result<String, GraphError> {
        let mut cache = self.cache.lock().await;
        let now = self.clock.now();
        if let (false, Some((tok, refresh_at))) = (force, cache.as_ref())
            && now < *refresh_at
        {
            return Ok(tok.clone());
        }
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", self.client_id.clone()),
            ("scope", GRAPH_SCOPE.into()),
        ];
        match &self.credential {
            Credential::Secret(s) => form.push(("client_secret", s.expose().to_owned())),
            Credential::Certificate { cert_pem, key_pem } => {
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push((
                    "client_assertion",
                    self.assertion(cert_pem, key_pem.expose(), now)?,
                ));
            }
        }
        let resp = self
            .http
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| GraphError::Transport(e.without_url().to_string()))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        if !status.is_success() {
            let desc = body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("token request failed");
            return Err(GraphError::Auth(format!("{}: {}", status.as_u16(), desc)));
        }
        let t: TokenResponse = serde_json::from_value(body)
            .map_err(|e| GraphError::Auth(format!("bad token response: {e}")))?;
        let life = Duration::from_secs(t.expires_in);
        let skew = if life > REFRESH_SKEW * 2 {
            REFRESH_SKEW
        } else {
            life / 2
        };
        *cache = Some((t.access_token.clone(), now + (life - skew)));
        Ok(t.access_token)
    }

    /// A signed client assertion (PS256, `x5t#S256` = SHA-256 of the certificate DER).
    fn assertion(
        &self,
        cert_pem: &str,
        key_pem: &str,
        now: OffsetDateTime,
    ) -> Result<String, GraphError> {
        let der = pem_body(cert_pem, "CERTIFICATE").ok_or_else(|| {
            GraphError::Auth("client_certificate is not a PEM certificate".into())
        })?;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
        header.typ = Some("JWT".into());
        header.x5t_s256 =
            Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&der)));
        let claims = AssertionClaims {
            aud: &self.token_url,
            iss: &self.client_id,
            sub: &self.client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now.unix_timestamp(),
            iat: now.unix_timestamp(),
            exp: now.unix_timestamp() + 300,
        };
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes())
            .map_err(|e| GraphError::Auth(format!("client_key: {e}")))?;
        jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|e| GraphError::Auth(format!("signing the client assertion: {e}")))
    }
}

/// The DER bytes of the first PEM block labelled `label`.
pub fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}
