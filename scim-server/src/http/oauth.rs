//! `POST /oauth/token` in the route list: the client-address rate limit, then the auth module's
//! token endpoint ([`crate::auth::OAuthServer`], RFC 6749 §4.4, RFC 7523).

use super::middleware::client_address;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A token request (RFC 6749 §4.4.2, RFC 7523 §2.1 and §2.2), form-encoded. The client
/// authenticates with `client_id` + `client_secret`, HTTP Basic, or a `client_assertion`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequestDoc {
    /// `client_credentials` or `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    pub grant_type: GrantTypeDoc,
    /// The client id (client secret and assertion clients).
    pub client_id: Option<String>,
    /// The client secret (`client_secret_post`).
    pub client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    pub client_assertion_type: Option<AssertionTypeDoc>,
    /// A signed JWT identifying the client (RFC 7523 §2.2).
    pub client_assertion: Option<String>,
    /// A signed JWT for the `jwt-bearer` grant (RFC 7523 §2.1).
    pub assertion: Option<String>,
    /// Ignored: a token grants the client's configured access.
    pub scope: Option<String>,
}

/// The grant types the endpoint serves (RFC 6749 §4.4.2; RFC 7523 §2.1); any other is
/// `unsupported_grant_type`.
#[derive(Debug, Serialize, ToSchema)]
pub enum GrantTypeDoc {
    /// Client credentials (RFC 6749 §4.4).
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// A JWT as the authorisation grant (RFC 7523 §2.1).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:jwt-bearer")]
    JwtBearer,
}

/// The one client assertion type (RFC 7523 §2.2).
#[derive(Debug, Serialize, ToSchema)]
pub enum AssertionTypeDoc {
    /// A JWT identifying the client.
    #[serde(rename = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")]
    JwtBearer,
}

/// A token response (RFC 6749 §5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponseDoc {
    /// The bearer token for the SCIM endpoints.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
}

/// An OAuth error response (RFC 6749 §5.2).
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorDoc {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unsupported_grant_type` or
    /// `server_error`.
    pub error: String,
    /// What went wrong, safe to show.
    pub error_description: Option<String>,
}

/// Issues an access token to a configured OAuth client (Entra's "OAuth 2.0 client credentials"
/// and workload identity federation modes).
#[utoipa::path(post, path = "/oauth/token", tag = "OAuth",
    request_body(content = TokenRequestDoc, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "an access token", body = TokenResponseDoc),
        (status = 400, description = "malformed request or unsupported grant", body = OAuthErrorDoc),
        (status = 401, description = "unknown client or wrong credentials", body = OAuthErrorDoc),
        (status = 404, description = "no OAuth clients are configured", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
        (status = 429, description = "too many token requests from this address; see `Retry-After`", body = super::docs::ErrorDoc, content_type = "application/scim+json"),
    ))]
pub async fn token(State(state): State<AppState>, request: Request) -> Response {
    let client = client_address(&request, state.settings.trust_forwarded_headers);
    if let Err(retry_after) = state.rate_limiter.check_token_request(client) {
        metrics::counter!(crate::metrics::RATE_LIMITED, "tenant" => "").increment(1);
        return super::middleware::rate_limited(
            retry_after,
            "too many token requests from this address",
        );
    }
    let Some(server) = state.oauth.clone() else {
        return super::error::not_found().await.into_response();
    };
    let (parts, body) = request.into_parts();
    crate::auth::oauth::respond(&server, &parts.headers, body).await
}
