//! Authentication: static tokens, `SCIM_TOKEN`, Entra JWTs with a JWKS served over real HTTP,
//! the `/oauth/token` endpoint over real HTTP (client secrets and RFC 7523 assertions).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use scim_server::auth::secret::hash_secret;
use scim_server::auth::{
    AuthConfig, AuthError, AuthService, Authenticator, ClientSecretConfig, Clock, CredentialKind,
    EntraJwtConfig, FederatedClientConfig, ManualClock, OAuthClientConfig, Principal, StaticTokens,
    TokenStore, create_token, list_access_tokens, list_tokens, revoke_token,
};
use scim_server::store::{Result as StoreResult, TokenRecord};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

mod assertion;
mod client_credentials;
mod entra_jwt;
mod static_tokens;
mod unavailable;

// ---------------------------------------------------------------------------------------------
// Test doubles and fixtures

/// Tokens in memory: the token part of the `Store` contract, nothing else; counts lookups.
#[derive(Default)]
struct MemTokens {
    tokens: Mutex<Vec<TokenRecord>>,
    lookups: AtomicUsize,
}

impl MemTokens {
    fn all(&self) -> Vec<TokenRecord> {
        self.tokens.lock().unwrap().clone()
    }

    /// How many times a token was looked up by hash.
    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenStore for MemTokens {
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        self.tokens.lock().unwrap().push(token.clone());
        Ok(())
    }
    async fn token_by_hash(&self, secret_hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .tokens
            .lock()
            .unwrap()
            .iter()
            .find(|t| t.secret_hash == secret_hash)
            .cloned())
    }
    async fn list_tokens(&self, tenant: Option<&str>) -> StoreResult<Vec<TokenRecord>> {
        Ok(self
            .tokens
            .lock()
            .unwrap()
            .iter()
            .filter(|t| tenant.is_none_or(|x| t.tenant == x))
            .cloned()
            .collect())
    }
    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let mut tokens = self.tokens.lock().unwrap();
        match tokens.iter_mut().find(|t| t.id == id) {
            Some(t) => {
                t.revoked = Some(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
const ENTRA_TENANT_A: &str = "aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb";
const ENTRA_TENANT_B: &str = "cccccccc-0000-1111-2222-dddddddddddd";
const ENTRA_AUDIENCE: &str = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621";
const KEY1_PEM: &[u8] = include_bytes!("../fixtures/rsa1.pem");
const KEY2_PEM: &[u8] = include_bytes!("../fixtures/rsa2.pem");
const KEY1_PUBLIC_PEM: &[u8] = include_bytes!("../fixtures/rsa1.pub.pem");
const KEY1_JWK: &str = include_str!("../fixtures/rsa1.jwk.json");
const KEY2_JWK: &str = include_str!("../fixtures/rsa2.jwk.json");

fn jwk(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn bearer(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(value).unwrap(),
    );
    h
}

fn sign(pem: &[u8], kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

/// A JWKS endpoint on 127.0.0.1 whose key set tests can change, counting its fetches.
struct JwksServer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    hits: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct JwksState {
    keys: Arc<Mutex<Vec<Value>>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(keys: Vec<Value>) -> Self {
        let state = JwksState {
            keys: Arc::new(Mutex::new(keys)),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route(
                "/keys",
                get(|State(s): State<JwksState>| async move {
                    s.hits.fetch_add(1, Ordering::SeqCst);
                    let keys = s.keys.lock().unwrap().clone();
                    axum::Json(json!({ "keys": keys }))
                }),
            )
            .with_state(state.clone());
        let addr = serve(app).await;
        Self {
            url: format!("http://{addr}/keys"),
            keys: state.keys,
            hits: state.hits,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn set_keys(&self, keys: Vec<Value>) {
        *self.keys.lock().unwrap() = keys;
    }
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// The app a SCIM client meets: `/oauth/token`, and a protected route that answers with the
/// principal (or the 401 the HTTP layer sends).
async fn serve_app(auth: AuthService) -> String {
    async fn whoami(State(auth): State<Arc<AuthService>>, headers: HeaderMap) -> Response {
        match auth.authenticate(&headers).await {
            Ok(p) => axum::Json(json!({
                "tenant": p.tenant(),
                "id": p.id(),
                "read_only": p.read_only(),
                "kind": format!("{:?}", p.kind()),
            }))
            .into_response(),
            Err(err) => err.to_response(),
        }
    }
    let oauth = auth.oauth_router();
    let app = Router::new()
        .route("/scim/v2/whoami", get(whoami))
        .with_state(Arc::new(auth))
        .merge(oauth);
    format!("http://{}", serve(app).await)
}

fn principal(tenant: &str, id: &str, read_only: bool, kind: CredentialKind) -> Principal {
    scim_server::test_support::principal(tenant, id, read_only, kind)
}

fn err(detail: &str) -> Result<Principal, AuthError> {
    Err(AuthError(detail.into()))
}

// ---------------------------------------------------------------------------------------------
// Entra JWT helpers

struct EntraSetup {
    jwks: JwksServer,
    clock: Arc<ManualClock>,
    auth: AuthService,
}

async fn entra_setup() -> EntraSetup {
    let jwks = JwksServer::start(vec![jwk(KEY1_JWK)]).await;
    let clock = Arc::new(ManualClock::new(T0));
    let mut entra = EntraJwtConfig::new(ENTRA_TENANT_A, "tenant-a");
    entra.jwks_url = jwks.url.clone();
    let config = AuthConfig {
        entra_jwt: Some(entra),
        ..AuthConfig::default()
    };
    let auth =
        AuthService::from_config(&config, Arc::new(MemTokens::default()), clock.clone()).unwrap();
    EntraSetup { jwks, clock, auth }
}

fn entra_claims(now: OffsetDateTime) -> Value {
    json!({
        "aud": ENTRA_AUDIENCE,
        "iss": format!("https://sts.windows.net/{ENTRA_TENANT_A}/"),
        "iat": unix(now) - 60,
        "nbf": unix(now) - 60,
        "exp": unix(now) + 3600,
        "appid": "00001111-aaaa-2222-bbbb-3333cccc4444",
        "sub": "00001111-aaaa-2222-bbbb-3333cccc4444",
        "tid": ENTRA_TENANT_A,
        "ver": "1.0",
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

// ---------------------------------------------------------------------------------------------
// Token endpoint helpers: client credentials

const SECRET_1: &str = "first-client-secret-0123456789";
const SECRET_2: &str = "second-client-secret-0123456789";
const SECRET_OLD: &str = "expired-client-secret-0123456789";

fn oauth_config() -> AuthConfig {
    AuthConfig {
        oauth_clients: vec![
            OAuthClientConfig {
                client_id: "entra-prod".into(),
                tenant: "tenant-a".into(),
                secrets: vec![
                    ClientSecretConfig::from_hash(hash_secret(SECRET_1)),
                    ClientSecretConfig::from_hash(hash_secret(SECRET_2)),
                    ClientSecretConfig {
                        sha256: Some(hash_secret(SECRET_OLD)),
                        value: None,
                        expires: Some(T0 - time::Duration::DAY),
                    },
                ],
                token_lifetime_seconds: 3600,
                read_only: false,
            },
            OAuthClientConfig {
                client_id: "long-lived".into(),
                tenant: "tenant-b".into(),
                secrets: vec![ClientSecretConfig {
                    sha256: None,
                    value: Some(SECRET_1.into()),
                    expires: None,
                }],
                token_lifetime_seconds: 21600,
                read_only: true,
            },
        ],
        ..AuthConfig::default()
    }
}

struct OAuthSetup {
    base: String,
    clock: Arc<ManualClock>,
    store: Arc<MemTokens>,
    http: reqwest::Client,
}

async fn oauth_setup(config: AuthConfig) -> OAuthSetup {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(MemTokens::default());
    let auth = AuthService::from_config(&config, store.clone(), clock.clone()).unwrap();
    OAuthSetup {
        base: serve_app(auth).await,
        clock,
        store,
        http: reqwest::Client::new(),
    }
}

impl OAuthSetup {
    async fn token(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.unwrap()
    }

    /// A `client_credentials` token request authenticated with HTTP Basic.
    async fn basic_token(&self, client_id: &str, secret: &str) -> reqwest::Response {
        self.token(
            &[("grant_type", "client_credentials")],
            Some((client_id, secret)),
        )
        .await
    }

    async fn whoami(&self, access_token: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}/scim/v2/whoami", self.base))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }
}

async fn expect_token(resp: reqwest::Response) -> (String, i64) {
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["expires_in"].as_i64().unwrap(),
    )
}

async fn expect_error(resp: reqwest::Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    body
}

// ---------------------------------------------------------------------------------------------
// Token endpoint helpers: RFC 7523 assertions

const WIF_TID: &str = "eeeeeeee-0000-1111-2222-ffffffffffff";
const WIF_SUBJECT: &str = "11112222-3333-4444-5555-666677778888";
const WIF_AUDIENCE: &str = "api://scim-test";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn wif_issuer() -> String {
    format!("https://login.microsoftonline.com/{WIF_TID}/v2.0")
}

/// The federated client `scim-wif` of tenant `tenant-w`, trusting the keys at `jwks_url`.
fn wif_client(jwks_url: String) -> FederatedClientConfig {
    FederatedClientConfig {
        client_id: "scim-wif".into(),
        tenant: "tenant-w".into(),
        issuer: wif_issuer(),
        subject: WIF_SUBJECT.into(),
        audience: WIF_AUDIENCE.into(),
        entra_tenant_id: Some(WIF_TID.into()),
        jwks_url,
        token_lifetime_seconds: 3600,
        leeway_seconds: 60,
        read_only: false,
    }
}

async fn wif_setup() -> (OAuthSetup, JwksServer) {
    let jwks = JwksServer::start(vec![jwk(KEY1_JWK)]).await;
    let config = AuthConfig {
        federated: vec![wif_client(jwks.url.clone())],
        ..AuthConfig::default()
    };
    (oauth_setup(config).await, jwks)
}

fn assertion_claims(now: OffsetDateTime, lifetime_seconds: i64) -> Value {
    json!({
        "iss": wif_issuer(),
        "sub": WIF_SUBJECT,
        "aud": WIF_AUDIENCE,
        "tid": WIF_TID,
        "iat": unix(now),
        "nbf": unix(now),
        "exp": unix(now) + lifetime_seconds,
        "jti": "7c0a1f3e",
    })
}

async fn client_assertion(s: &OAuthSetup, assertion: &str) -> reqwest::Response {
    s.token(
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "scim-wif"),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion),
            ("scope", "scim"),
        ],
        None,
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Failing dependencies

struct BrokenTokens;

#[async_trait]
impl TokenStore for BrokenTokens {
    async fn insert_token(&self, _: &TokenRecord) -> StoreResult<()> {
        Err(scim_server::store::StoreError::Corrupt(
            "test: store down".into(),
        ))
    }
    async fn token_by_hash(&self, _: &str) -> StoreResult<Option<TokenRecord>> {
        Err(scim_server::store::StoreError::Corrupt(
            "test: store down".into(),
        ))
    }
    async fn list_tokens(&self, _: Option<&str>) -> StoreResult<Vec<TokenRecord>> {
        Err(scim_server::store::StoreError::Corrupt(
            "test: store down".into(),
        ))
    }
    async fn revoke_token(&self, _: &str, _: OffsetDateTime) -> StoreResult<bool> {
        Err(scim_server::store::StoreError::Corrupt(
            "test: store down".into(),
        ))
    }
}

async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/keys")
}
