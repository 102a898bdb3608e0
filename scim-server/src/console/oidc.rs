//! OpenID Connect sign-in: the authorization code flow with PKCE (RFC 7636, `S256`), a `state`
//! bound to the browser by a cookie and a `nonce` bound to the ID token (OpenID Connect Core 1.0
//! §3.1.2.1, §3.1.3.7). Any provider with discovery works; Entra ID is the documented one.
//!
//! The ID token is checked with the server's own JWT primitives ([`crate::auth::jwt`]): RS256
//! only, the key from the provider's JWKS cached by `kid`, `iss` equal to the configured issuer,
//! `aud` containing the client id (and `azp` equal to it when there are several audiences),
//! `exp`/`iat` against the [`Clock`] with a minute of skew, and the nonce of this sign-in.

use super::config::{ConsoleConfig, OidcConfig};
use super::roles::Role;
use crate::auth::jwks::JwksCache;
use crate::auth::jwt::{Claims, audience_matches, check_times, string_claim, verify_rs256};
use crate::clock::Clock;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Why a sign-in failed; the message is shown to the person (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered nonsense.
    #[error("the sign-in provider could not be reached or answered unexpectedly: {0}")]
    Provider(String),
    /// The provider refused (an `error` on the callback or from the token endpoint).
    #[error("the sign-in provider refused: {0}")]
    Refused(String),
    /// The ID token failed a check.
    #[error("the sign-in could not be verified: {0}")]
    Invalid(String),
}

/// The provider metadata the flow needs (OpenID Connect Discovery 1.0 §3).
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

struct Discovered {
    metadata: Metadata,
    jwks: JwksCache,
}

/// The console's OpenID Connect client.
pub struct OidcClient {
    config: OidcConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    discovered: tokio::sync::OnceCell<Discovered>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.config.issuer)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

/// What a started sign-in must remember until the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// Where to send the browser.
    pub authorization_url: String,
    /// The `state` (also set in the browser's login cookie).
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier.
    pub code_verifier: String,
}

/// Who signed in, from a verified ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `sub`.
    pub subject: String,
    /// `name`, `preferred_username`, `email` or `sub`.
    pub display_name: String,
    /// The `groups` and `roles` claim values.
    pub claim_values: Vec<String>,
    /// `email` and `preferred_username`: how access reviews and time-bound grant policies name
    /// a person (a SCIM `userName` or an e-mail address).
    pub names: super::governance::ReviewerIdentity,
}

fn random_token() -> String {
    crate::auth::secret::generate_secret("")
        .expose()
        .to_string()
}

/// The PKCE `S256` challenge of a verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl OidcClient {
    /// A client for `config`; the provider is contacted on the first sign-in, not at start, so
    /// the server starts while the provider is down.
    pub fn new(config: OidcConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            config,
            http,
            clock,
            discovered: tokio::sync::OnceCell::new(),
        })
    }

    async fn discovered(&self) -> Result<&Discovered, OidcError> {
        self.discovered
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let metadata: Metadata = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| OidcError::Provider(e.without_url().to_string()))?
                    .json()
                    .await
                    .map_err(|e| OidcError::Provider(format!("discovery document: {e}")))?;
                // Discovery §4.3: the issuer in the document must be the one configured.
                if metadata.issuer != self.config.issuer {
                    return Err(OidcError::Provider(format!(
                        "the discovery document names issuer {:?}, not the configured {:?}",
                        metadata.issuer, self.config.issuer
                    )));
                }
                let jwks = JwksCache::new(
                    metadata.jwks_uri.clone(),
                    self.http.clone(),
                    self.clock.clone(),
                    Duration::from_secs(30),
                );
                Ok(Discovered { metadata, jwks })
            })
            .await
    }

    /// Starts a sign-in: a fresh state, nonce and PKCE verifier, and the authorization URL.
    pub async fn start(&self, redirect_uri: &str) -> Result<Started, OidcError> {
        let d = self.discovered().await?;
        let (state, nonce, code_verifier) = (random_token(), random_token(), random_token());
        let mut url = url::Url::parse(&d.metadata.authorization_endpoint)
            .map_err(|e| OidcError::Provider(format!("authorization_endpoint: {e}")))?;
        let mut scopes = vec!["openid".to_string()];
        scopes.extend(
            self.config
                .scopes
                .iter()
                .filter(|s| *s != "openid")
                .cloned(),
        );
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &pkce_challenge(&code_verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(Started {
            authorization_url: url.into(),
            state,
            nonce,
            code_verifier,
        })
    }

    /// Redeems the authorization code and verifies the ID token.
    pub async fn finish(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
        nonce: &str,
    ) -> Result<Identity, OidcError> {
        let d = self.discovered().await?;
        let mut request = self.http.post(&d.metadata.token_endpoint).form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", self.config.client_id.as_str()),
            ("code_verifier", code_verifier),
        ]);
        if let Some(secret) = &self.config.client_secret {
            // RFC 6749 §2.3.1: the client id and secret are form-encoded before Basic.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            request = request.basic_auth(enc(&self.config.client_id), Some(enc(secret.expose())));
        }
        let response = request
            .send()
            .await
            .map_err(|e| OidcError::Provider(e.without_url().to_string()))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("token response: {e}")))?;
        if !status.is_success() {
            let error = body.get("error").and_then(Value::as_str).unwrap_or("error");
            let description = body
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(OidcError::Refused(
                format!("{error} {description}").trim().to_string(),
            ));
        }
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::Invalid("the token response has no id_token".into()))?;
        let claims = verify_rs256(id_token, &d.jwks, "ID token")
            .await
            .map_err(|e| OidcError::Invalid(e.to_string()))?;
        self.check_claims(&claims, nonce)?;
        identity(&claims)
    }

    fn check_claims(&self, claims: &Claims, nonce: &str) -> Result<(), OidcError> {
        let invalid = |why: &str| Err(OidcError::Invalid(why.to_string()));
        if string_claim(claims, "iss") != Some(self.config.issuer.as_str()) {
            return invalid("the ID token's issuer is not the configured one");
        }
        if !audience_matches(claims, &self.config.client_id) {
            return invalid("the ID token is not addressed to this console (aud)");
        }
        if let Some(Value::Array(auds)) = claims.get("aud")
            && auds.len() > 1
            && string_claim(claims, "azp") != Some(self.config.client_id.as_str())
        {
            return invalid("the ID token's azp is not this console");
        }
        check_times(claims, self.clock.now(), 60, "ID token")
            .map_err(|e| OidcError::Invalid(e.to_string()))?;
        let matches = string_claim(claims, "nonce")
            .is_some_and(|n| subtle::ConstantTimeEq::ct_eq(n.as_bytes(), nonce.as_bytes()).into());
        if !matches {
            return invalid("the ID token's nonce is not this sign-in's");
        }
        Ok(())
    }
}

/// The person an ID token's claims describe.
pub fn identity(claims: &Claims) -> Result<Identity, OidcError> {
    let subject = string_claim(claims, "sub")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OidcError::Invalid("the ID token has no sub".into()))?
        .to_string();
    // Entra ID replaces `groups` by a pointer to Graph when a person has too many groups.
    let overage = claims
        .get("_claim_names")
        .and_then(Value::as_object)
        .is_some_and(|names| names.contains_key("groups"));
    if overage {
        return Err(OidcError::Invalid(
            "the provider left out your groups (too many to put in a token); map app roles \
             instead of groups in [console.roles], or assign the console's groups to the app"
                .into(),
        ));
    }
    let display_name = ["name", "preferred_username", "email"]
        .iter()
        .find_map(|c| string_claim(claims, c).filter(|v| !v.trim().is_empty()))
        .unwrap_or(&subject)
        .to_string();
    let claim_values = ["groups", "roles"]
        .iter()
        .filter_map(|c| claims.get(*c).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    let names = super::governance::ReviewerIdentity {
        email: string_claim(claims, "email").map(str::to_string),
        username: string_claim(claims, "preferred_username").map(str::to_string),
    };
    Ok(Identity {
        subject,
        display_name,
        claim_values,
        names,
    })
}

/// The tenant and role an identity gets: the default tenant's mapping first, then the others in
/// name order; `None` when no mapping grants a role.
pub fn tenant_role(
    config: &ConsoleConfig,
    default_tenant: &str,
    identity: &Identity,
) -> Option<(String, Role)> {
    let values: Vec<&str> = identity.claim_values.iter().map(String::as_str).collect();
    let default = config.roles.get_key_value(default_tenant);
    default
        .into_iter()
        .chain(config.roles.iter().filter(|(t, _)| *t != default_tenant))
        .find_map(|(tenant, mapping)| mapping.role_for(&values).map(|r| (tenant.clone(), r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn identity_from_claims() {
        let id = identity(&claims(json!({
            "sub": "u1", "preferred_username": "ada@example.com",
            "groups": ["g1", "g2"], "roles": ["Console.Admin"]
        })))
        .unwrap();
        assert_eq!(id.display_name, "ada@example.com");
        assert_eq!(id.claim_values, ["g1", "g2", "Console.Admin"]);
        assert!(identity(&claims(json!({"name": "x"}))).is_err());
        let overage = identity(&claims(json!({
            "sub": "u1", "_claim_names": {"groups": "src1"}
        })))
        .unwrap_err();
        assert!(overage.to_string().contains("app roles"), "{overage}");
    }

    #[test]
    fn the_default_tenant_is_tried_first() {
        let config: ConsoleConfig = ConsoleConfig::from_table(Some(
            &r#"
            [roles.alpha]
            admin = ["g1"]
            [roles.default]
            viewer = ["g1"]
            "#
            .parse()
            .unwrap(),
        ))
        .unwrap();
        let id = Identity {
            subject: "s".into(),
            display_name: "d".into(),
            claim_values: vec!["g1".into()],
            names: Default::default(),
        };
        assert_eq!(
            tenant_role(&config, "default", &id),
            Some(("default".into(), Role::Viewer))
        );
        assert_eq!(
            tenant_role(&config, "other", &id),
            Some(("alpha".into(), Role::Admin))
        );
        let nobody = Identity {
            claim_values: vec![],
            ..id
        };
        assert_eq!(tenant_role(&config, "default", &nobody), None);
    }
}
