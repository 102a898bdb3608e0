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
    TokenStore, create_token, list_tokens, revoke_token,
};
use scim_server::store::{Result as StoreResult, TokenRecord};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

// ---------------------------------------------------------------------------------------------
// Test doubles and fixtures

/// Tokens in memory: the token part of the `Store` contract, nothing else.
#[derive(Default)]
struct MemTokens(Mutex<Vec<TokenRecord>>);

impl MemTokens {
    fn all(&self) -> Vec<TokenRecord> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl TokenStore for MemTokens {
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        self.0.lock().unwrap().push(token.clone());
        Ok(())
    }
    async fn token_by_hash(&self, secret_hash: &str) -> StoreResult<Option<TokenRecord>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|t| t.secret_hash == secret_hash)
            .cloned())
    }
    async fn list_tokens(&self, tenant: Option<&str>) -> StoreResult<Vec<TokenRecord>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|t| tenant.is_none_or(|x| t.tenant == x))
            .cloned()
            .collect())
    }
    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let mut tokens = self.0.lock().unwrap();
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
                "tenant": p.tenant,
                "id": p.id,
                "read_only": p.read_only,
                "kind": format!("{:?}", p.kind),
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
    Principal {
        tenant: tenant.into(),
        id: id.into(),
        read_only,
        kind,
    }
}

fn err(detail: &str) -> Result<Principal, AuthError> {
    Err(AuthError(detail.into()))
}

// ---------------------------------------------------------------------------------------------
// Static tokens

#[tokio::test]
async fn static_token_accepted_in_every_scheme_spelling_and_bare() {
    let store = Arc::new(MemTokens::default());
    let (record, secret) = create_token(&*store, "acme", "entra prod", false, T0)
        .await
        .unwrap();
    assert!(secret.expose().starts_with("scim_"));
    assert_eq!(record.secret_hash, hash_secret(secret.expose()));
    assert!(!format!("{record:?}").contains(secret.expose()));

    let auth = StaticTokens::new(store.clone(), Arc::new(ManualClock::new(T0)));
    let expected = Ok(principal(
        "acme",
        &record.id,
        false,
        CredentialKind::StaticToken,
    ));
    for form in [
        "Bearer {}",
        "bearer {}",
        "BEARER {}",
        "{}",
        "  Bearer   {}  ",
    ] {
        let value = form.replace("{}", secret.expose());
        assert_eq!(auth.authenticate(&bearer(&value)).await, expected, "{form}");
    }
    let strict = auth.clone().accept_bare_token(false);
    assert_eq!(
        strict.authenticate(&bearer(secret.expose())).await,
        err("missing authorization scheme")
    );
}

#[tokio::test]
async fn static_token_failures() {
    let store = Arc::new(MemTokens::default());
    let clock = Arc::new(ManualClock::new(T0));
    let auth = StaticTokens::new(store.clone(), clock.clone());
    let (ro, ro_secret) = create_token(&*store, "acme", "auditor", true, T0)
        .await
        .unwrap();
    let (rev, rev_secret) = create_token(&*store, "acme", "old", false, T0)
        .await
        .unwrap();

    // Read-only flag carried to the principal.
    assert_eq!(
        auth.verify(ro_secret.expose()).await,
        Ok(principal("acme", &ro.id, true, CredentialKind::StaticToken))
    );
    // Wrong secret, and a secret differing in one character.
    assert_eq!(
        auth.verify("scim_not-a-real-token").await,
        err("invalid bearer token")
    );
    let mut near = ro_secret.expose().to_owned();
    let last = near.pop().unwrap();
    near.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(auth.verify(&near).await, err("invalid bearer token"));
    // Revoked.
    assert!(revoke_token(&*store, &rev.id, T0).await.unwrap());
    assert!(!revoke_token(&*store, "tok_missing", T0).await.unwrap());
    assert_eq!(
        auth.verify(rev_secret.expose()).await,
        err("token is revoked")
    );
    // Expired (a record with an expiry, as issued access tokens have).
    let expiring = TokenRecord {
        id: "tok_expiring".into(),
        tenant: "acme".into(),
        secret_hash: hash_secret("scim_expiring-secret"),
        label: "expiring".into(),
        read_only: false,
        created: T0,
        expires: Some(T0 + time::Duration::hours(1)),
        revoked: None,
    };
    store.insert_token(&expiring).await.unwrap();
    assert!(auth.verify("scim_expiring-secret").await.is_ok());
    clock.advance(time::Duration::hours(1));
    assert_eq!(
        auth.verify("scim_expiring-secret").await,
        err("token expired")
    );
    // Header problems.
    assert_eq!(
        auth.authenticate(&HeaderMap::new()).await,
        err("missing Authorization header")
    );
    assert_eq!(
        auth.authenticate(&bearer("Basic dXNlcjpwYXNz")).await,
        err("unsupported authorization scheme")
    );
    assert_eq!(
        auth.authenticate(&bearer("Bearer")).await,
        err("missing bearer token")
    );
}

#[tokio::test]
async fn every_token_belongs_to_its_tenant_and_cli_helpers_list_them() {
    let store = Arc::new(MemTokens::default());
    let auth = StaticTokens::new(store.clone(), Arc::new(ManualClock::new(T0)));
    let (a, a_secret) = create_token(&*store, "tenant-a", "a", false, T0)
        .await
        .unwrap();
    let (b, b_secret) = create_token(&*store, "tenant-b", "b", false, T0 + time::Duration::SECOND)
        .await
        .unwrap();
    assert_eq!(
        auth.verify(a_secret.expose()).await.unwrap().tenant,
        "tenant-a"
    );
    assert_eq!(
        auth.verify(b_secret.expose()).await.unwrap().tenant,
        "tenant-b"
    );

    let all = list_tokens(&*store, None).await.unwrap();
    assert_eq!(
        all.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        [a.id.as_str(), b.id.as_str()]
    );
    let only_b = list_tokens(&*store, Some("tenant-b")).await.unwrap();
    assert_eq!(only_b, vec![b]);
    // Only hashes are stored.
    for t in store.all() {
        assert!(!t.secret_hash.contains("scim_"));
        assert_eq!(t.secret_hash.len(), 64);
    }
}

#[tokio::test]
async fn scim_token_from_the_environment_is_accepted_without_being_stored() {
    let store = Arc::new(MemTokens::default());
    let env_secret = "ci-0123456789abcdef0123456789abcdef";
    let auth = StaticTokens::new(store.clone(), Arc::new(ManualClock::new(T0)))
        .with_env_token("default", env_secret);
    assert_eq!(
        auth.authenticate(&bearer(&format!("Bearer {env_secret}")))
            .await,
        Ok(principal(
            "default",
            "SCIM_TOKEN",
            false,
            CredentialKind::StaticToken
        ))
    );
    assert_eq!(
        auth.verify("ci-0123456789abcdef0123456789abcdeX").await,
        err("invalid bearer token")
    );
    assert!(store.all().is_empty());
    assert!(!format!("{auth:?}").contains(env_secret));

    // An empty SCIM_TOKEN enables nothing.
    let none = StaticTokens::new(store.clone(), Arc::new(ManualClock::new(T0)))
        .with_env_token("default", "");
    assert!(none.verify("").await.is_err());
}

#[tokio::test]
async fn unauthenticated_requests_get_401_with_bearer_challenge_and_scim_error_over_http() {
    let store = Arc::new(MemTokens::default());
    let (record, secret) = create_token(&*store, "acme", "l", true, T0).await.unwrap();
    let auth = AuthService::from_config(
        &AuthConfig::default(),
        store.clone(),
        Arc::new(ManualClock::new(T0)),
    )
    .unwrap();
    let base = serve_app(auth).await;
    let client = reqwest::Client::new();
    let url = format!("{base}/scim/v2/whoami");

    for auth_header in [None, Some("Bearer wrong"), Some("Basic dXNlcjpwYXNz")] {
        let mut req = client.get(&url);
        if let Some(h) = auth_header {
            req = req.header("authorization", h);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        assert_eq!(resp.headers()["content-type"], "application/scim+json");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
        assert_eq!(body["status"], "401");
        assert!(body["detail"].as_str().unwrap().len() > 3);
    }

    for scheme in ["Bearer", "bearer", "BEARER"] {
        let resp = client
            .get(&url)
            .header("authorization", format!("{scheme} {}", secret.expose()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!({"tenant": "acme", "id": record.id, "read_only": true, "kind": "StaticToken"})
        );
    }
    // The bare form (some Okta orgs).
    let resp = client
        .get(&url)
        .header("authorization", secret.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Entra JWTs ("blank secret token")

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

#[tokio::test]
async fn entra_jwt_valid_token_selects_the_mapped_tenant() {
    let s = entra_setup().await;
    let token = sign(KEY1_PEM, "test-key-1", &entra_claims(T0));
    assert_eq!(
        s.auth
            .authenticate(&bearer(&format!("Bearer {token}")))
            .await,
        Ok(principal(
            "tenant-a",
            "00001111-aaaa-2222-bbbb-3333cccc4444",
            false,
            CredentialKind::EntraJwt
        ))
    );
    assert_eq!(s.jwks.hits(), 1);
    // Cached: no second fetch.
    assert!(s.auth.verify_token(&token).await.is_ok());
    assert_eq!(s.jwks.hits(), 1);
}

#[tokio::test]
async fn entra_jwt_claim_failures() {
    let s = entra_setup().await;
    let now = T0;
    let check = |claims: Value| {
        let token = sign(KEY1_PEM, "test-key-1", &claims);
        let auth = s.auth.clone();
        async move { auth.verify_token(&token).await }
    };
    let base = entra_claims(now);
    assert_eq!(
        check(with(base.clone(), "iss", json!("https://evil.example/"))).await,
        err("JWT issuer not allowed")
    );
    assert_eq!(
        check(with(
            base.clone(),
            "iss",
            json!(format!("https://sts.windows.net/{ENTRA_TENANT_B}/"))
        ))
        .await,
        err("JWT issuer not allowed")
    );
    assert_eq!(
        check(with(
            base.clone(),
            "iss",
            json!(format!(
                "https://login.microsoftonline.com/{ENTRA_TENANT_A}/v2.0"
            ))
        ))
        .await,
        err("JWT issuer not allowed")
    );
    assert_eq!(
        check(with(base.clone(), "aud", json!("api://someone-else"))).await,
        err("JWT audience not accepted")
    );
    // exp: beyond the 60 s leeway fails; within it passes.
    assert_eq!(
        check(with(base.clone(), "exp", json!(unix(now) - 61))).await,
        err("JWT expired")
    );
    assert!(
        check(with(base.clone(), "exp", json!(unix(now) - 30)))
            .await
            .is_ok()
    );
    assert_eq!(
        check(with(base.clone(), "nbf", json!(unix(now) + 120))).await,
        err("JWT not yet valid")
    );
    let mut no_exp = base.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(check(no_exp).await, err("JWT has no exp claim"));
    assert_eq!(
        check(with(base.clone(), "tid", json!(ENTRA_TENANT_B))).await,
        err("JWT tenant does not match its issuer")
    );
}

#[tokio::test]
async fn entra_jwt_signature_algorithm_and_key_confusion() {
    let s = entra_setup().await;
    let claims = entra_claims(T0);
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());

    // alg: none, unsigned.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": "test-key-1"})),
        b64(&claims)
    );
    assert_eq!(
        s.auth.verify_token(&none).await,
        err("JWT algorithm not allowed")
    );
    // HS256 "signed" with the RSA public key as the HMAC secret (key confusion).
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("test-key-1".into());
    let confused =
        jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(KEY1_PUBLIC_PEM)).unwrap();
    assert_eq!(
        s.auth.verify_token(&confused).await,
        err("JWT algorithm not allowed")
    );
    // Also with the JWK's modulus as the secret.
    let n = jwk(KEY1_JWK)["n"].as_str().unwrap().to_owned();
    let confused_n =
        jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(n.as_bytes())).unwrap();
    assert_eq!(
        s.auth.verify_token(&confused_n).await,
        err("JWT algorithm not allowed")
    );
    // Neither touched the key set.
    assert_eq!(s.jwks.hits(), 0);

    // Other RSA-family algorithms are refused too.
    let mut rs512 = Header::new(Algorithm::RS512);
    rs512.kid = Some("test-key-1".into());
    let t = jsonwebtoken::encode(
        &rs512,
        &claims,
        &EncodingKey::from_rsa_pem(KEY1_PEM).unwrap(),
    )
    .unwrap();
    assert_eq!(
        s.auth.verify_token(&t).await,
        err("JWT algorithm not allowed")
    );

    // Signed by key 2 but claiming key 1's kid.
    let forged = sign(KEY2_PEM, "test-key-1", &claims);
    assert_eq!(
        s.auth.verify_token(&forged).await,
        err("JWT signature invalid")
    );
    // A payload changed after signing.
    let good = sign(KEY1_PEM, "test-key-1", &claims);
    let parts: Vec<&str> = good.split('.').collect();
    let tampered_claims = with(claims.clone(), "tid", json!(ENTRA_TENANT_A.to_uppercase()));
    let tampered = format!("{}.{}.{}", parts[0], b64(&tampered_claims), parts[2]);
    assert_eq!(
        s.auth.verify_token(&tampered).await,
        err("JWT signature invalid")
    );
    // No kid.
    let mut no_kid = Header::new(Algorithm::RS256);
    no_kid.kid = None;
    let t = jsonwebtoken::encode(
        &no_kid,
        &claims,
        &EncodingKey::from_rsa_pem(KEY1_PEM).unwrap(),
    )
    .unwrap();
    assert_eq!(s.auth.verify_token(&t).await, err("JWT has no key id"));
}

#[tokio::test]
async fn entra_jwks_refetched_on_unknown_kid_at_most_once_per_cooldown() {
    let s = entra_setup().await;
    let claims = entra_claims(T0);
    assert!(
        s.auth
            .verify_token(&sign(KEY1_PEM, "test-key-1", &claims))
            .await
            .is_ok()
    );
    assert_eq!(s.jwks.hits(), 1);

    // The issuer rotates: key 2 appears. Within the cooldown an unknown kid does not refetch.
    s.jwks.set_keys(vec![jwk(KEY1_JWK), jwk(KEY2_JWK)]);
    let rotated = sign(KEY2_PEM, "test-key-2", &claims);
    assert_eq!(
        s.auth.verify_token(&rotated).await,
        err("JWT signing key not found")
    );
    assert_eq!(s.jwks.hits(), 1);

    // After the cooldown the unknown kid refetches once, and the token is accepted.
    s.clock.advance(time::Duration::seconds(31));
    let claims = entra_claims(s.clock.now());
    let rotated = sign(KEY2_PEM, "test-key-2", &claims);
    assert!(s.auth.verify_token(&rotated).await.is_ok());
    assert_eq!(s.jwks.hits(), 2);
    assert!(s.auth.verify_token(&rotated).await.is_ok());
    assert_eq!(s.jwks.hits(), 2);

    // Made-up kids cannot hammer the key endpoint: one fetch per cooldown at most.
    for i in 0..5 {
        let t = sign(KEY1_PEM, &format!("made-up-{i}"), &claims);
        assert_eq!(
            s.auth.verify_token(&t).await,
            err("JWT signing key not found")
        );
    }
    assert_eq!(s.jwks.hits(), 2);
    s.clock.advance(time::Duration::seconds(31));
    let claims = entra_claims(s.clock.now());
    for i in 0..5 {
        let t = sign(KEY1_PEM, &format!("made-up-{i}"), &claims);
        assert!(s.auth.verify_token(&t).await.is_err());
    }
    assert_eq!(s.jwks.hits(), 3);

    // Known keys keep working meanwhile.
    assert!(
        s.auth
            .verify_token(&sign(KEY1_PEM, "test-key-1", &claims))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn entra_jwks_with_only_an_hmac_key_verifies_nothing() {
    let jwks = JwksServer::start(vec![
        json!({"kty": "oct", "kid": "test-key-1", "k": URL_SAFE_NO_PAD.encode(KEY1_PUBLIC_PEM)}),
    ])
    .await;
    let mut entra = EntraJwtConfig::new(ENTRA_TENANT_A, "tenant-a");
    entra.jwks_url = jwks.url.clone();
    let config = AuthConfig {
        entra_jwt: Some(entra),
        ..AuthConfig::default()
    };
    let auth = AuthService::from_config(
        &config,
        Arc::new(MemTokens::default()),
        Arc::new(ManualClock::new(T0)),
    )
    .unwrap();
    let token = sign(KEY1_PEM, "test-key-1", &entra_claims(T0));
    assert_eq!(
        auth.verify_token(&token).await,
        err("JWT signing key not found")
    );
}

#[tokio::test]
async fn jwt_shaped_tokens_without_entra_mode_are_just_unknown_tokens() {
    let auth = AuthService::from_config(
        &AuthConfig::default(),
        Arc::new(MemTokens::default()),
        Arc::new(ManualClock::new(T0)),
    )
    .unwrap();
    let token = sign(KEY1_PEM, "test-key-1", &entra_claims(T0));
    assert_eq!(auth.verify_token(&token).await, err("invalid bearer token"));
}

// ---------------------------------------------------------------------------------------------
// The token endpoint: client credentials

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

#[tokio::test]
async fn client_credentials_secret_in_body_and_the_token_authenticates() {
    let s = oauth_setup(oauth_config()).await;
    let resp = s
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "entra-prod"),
                ("client_secret", SECRET_1),
                ("scope", "scim"),
            ],
            None,
        )
        .await;
    let (token, expires_in) = expect_token(resp).await;
    assert_eq!(expires_in, 3600);
    let (status, who) = s.whoami(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        who,
        json!({"tenant": "tenant-a", "id": "entra-prod", "read_only": false, "kind": "OAuthAccessToken"})
    );
    // Stored as a hash with its expiry; the access token itself is nowhere.
    let stored = s.store.all();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].secret_hash, hash_secret(&token));
    assert_eq!(stored[0].expires, Some(T0 + time::Duration::hours(1)));
    assert!(stored[0].id.starts_with("oat_"));

    // It stops working when it expires.
    s.clock.advance(time::Duration::seconds(3600));
    let (status, body) = s.whoami(&token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "token expired");
}

#[tokio::test]
async fn client_credentials_with_basic_and_rotated_secrets() {
    let s = oauth_setup(oauth_config()).await;
    // HTTP Basic.
    let (token, _) = expect_token(
        s.token(
            &[("grant_type", "client_credentials")],
            Some(("entra-prod", SECRET_1)),
        )
        .await,
    )
    .await;
    assert_eq!(s.whoami(&token).await.1["tenant"], "tenant-a");
    // The second active secret (rotation), in the body and in Basic.
    expect_token(
        s.token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "entra-prod"),
                ("client_secret", SECRET_2),
            ],
            None,
        )
        .await,
    )
    .await;
    expect_token(
        s.token(
            &[("grant_type", "client_credentials")],
            Some(("entra-prod", SECRET_2)),
        )
        .await,
    )
    .await;
    // A secret past its expiry no longer obtains tokens.
    let body = expect_error(
        s.token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "entra-prod"),
                ("client_secret", SECRET_OLD),
            ],
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert_eq!(body["error_description"], "client secret expired");
}

#[tokio::test]
async fn client_credentials_errors() {
    let s = oauth_setup(oauth_config()).await;
    // Wrong secret in the body: 401 invalid_client without a Basic challenge.
    let resp = s
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "entra-prod"),
                ("client_secret", "wrong-secret-0123456789"),
            ],
            None,
        )
        .await;
    assert!(resp.headers().get("www-authenticate").is_none());
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // Wrong secret with Basic: 401 invalid_client with `WWW-Authenticate: Basic`.
    let resp = s
        .token(
            &[("grant_type", "client_credentials")],
            Some(("entra-prod", "wrong-secret")),
        )
        .await;
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // A secret of another client.
    expect_error(
        s.token(
            &[("grant_type", "client_credentials")],
            Some(("long-lived", SECRET_2)),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    // Unknown client; no credentials at all.
    expect_error(
        s.token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", SECRET_1),
            ],
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    expect_error(
        s.token(&[("grant_type", "client_credentials")], None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    // Unsupported grant types.
    for grant in ["password", "authorization_code", "refresh_token"] {
        expect_error(
            s.token(
                &[
                    ("grant_type", grant),
                    ("client_id", "entra-prod"),
                    ("client_secret", SECRET_1),
                ],
                None,
            )
            .await,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        )
        .await;
    }
    // Malformed requests.
    expect_error(
        s.token(&[("client_id", "entra-prod")], None).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    expect_error(
        s.token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "entra-prod"),
                ("client_secret", SECRET_1),
            ],
            Some(("entra-prod", SECRET_1)),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    expect_error(
        s.token(
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let resp = s
        .http
        .post(format!("{}/oauth/token", s.base))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    // Nothing was issued.
    assert!(s.store.all().is_empty());
}

#[tokio::test]
async fn token_lifetimes_are_configurable_within_one_to_six_hours() {
    let s = oauth_setup(oauth_config()).await;
    let (token, expires_in) = expect_token(
        s.token(
            &[("grant_type", "client_credentials")],
            Some(("long-lived", SECRET_1)),
        )
        .await,
    )
    .await;
    assert_eq!(expires_in, 21600);
    let who = s.whoami(&token).await.1;
    assert_eq!(who["tenant"], "tenant-b");
    assert_eq!(who["read_only"], true);
    s.clock.advance(time::Duration::seconds(21599));
    assert_eq!(s.whoami(&token).await.0, StatusCode::OK);
    s.clock.advance(time::Duration::seconds(1));
    assert_eq!(s.whoami(&token).await.0, StatusCode::UNAUTHORIZED);

    for (bad, ok) in [(3599, false), (3600, true), (21600, true), (21601, false)] {
        let mut config = oauth_config();
        config.oauth_clients[0].token_lifetime_seconds = bad;
        let result = AuthService::from_config(
            &config,
            Arc::new(MemTokens::default()),
            Arc::new(ManualClock::new(T0)),
        );
        match result {
            Ok(_) => assert!(ok, "{bad} accepted"),
            Err(e) => {
                assert!(!ok, "{bad} refused");
                assert_eq!(e.key, "auth.oauth_clients[0].token_lifetime_seconds");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The token endpoint: RFC 7523 assertions (workload identity federation)

const WIF_TID: &str = "eeeeeeee-0000-1111-2222-ffffffffffff";
const WIF_SUBJECT: &str = "11112222-3333-4444-5555-666677778888";
const WIF_AUDIENCE: &str = "api://scim-test";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn wif_issuer() -> String {
    format!("https://login.microsoftonline.com/{WIF_TID}/v2.0")
}

async fn wif_setup() -> (OAuthSetup, JwksServer) {
    let jwks = JwksServer::start(vec![jwk(KEY1_JWK)]).await;
    let config = AuthConfig {
        federated: vec![FederatedClientConfig {
            client_id: "scim-wif".into(),
            tenant: "tenant-w".into(),
            issuer: wif_issuer(),
            subject: WIF_SUBJECT.into(),
            audience: WIF_AUDIENCE.into(),
            entra_tenant_id: Some(WIF_TID.into()),
            jwks_url: jwks.url.clone(),
            token_lifetime_seconds: 3600,
            leeway_seconds: 60,
            read_only: false,
        }],
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

#[tokio::test]
async fn wif_assertion_valid_and_the_token_never_outlives_it() {
    let (s, _jwks) = wif_setup().await;
    // An assertion valid for five hours: the token gets the configured hour.
    let long = sign(KEY1_PEM, "test-key-1", &assertion_claims(T0, 5 * 3600));
    let (token, expires_in) = expect_token(client_assertion(&s, &long).await).await;
    assert_eq!(expires_in, 3600);
    let who = s.whoami(&token).await.1;
    assert_eq!(
        who,
        json!({"tenant": "tenant-w", "id": "scim-wif", "read_only": false, "kind": "OAuthAccessToken"})
    );

    // An assertion valid for ten more minutes: the token expires with it.
    let short = sign(KEY1_PEM, "test-key-1", &assertion_claims(T0, 600));
    let (token, expires_in) = expect_token(client_assertion(&s, &short).await).await;
    assert_eq!(expires_in, 600);
    let record = s
        .store
        .all()
        .into_iter()
        .find(|t| t.secret_hash == hash_secret(&token))
        .unwrap();
    assert_eq!(record.expires, Some(T0 + time::Duration::seconds(600)));
    s.clock.advance(time::Duration::seconds(600));
    assert_eq!(s.whoami(&token).await.0, StatusCode::UNAUTHORIZED);

    // The RFC 7523 §2.1 grant form.
    let now = s.clock.now();
    let assertion = sign(KEY1_PEM, "test-key-1", &assertion_claims(now, 1800));
    let (_, expires_in) = expect_token(
        s.token(
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &assertion),
            ],
            None,
        )
        .await,
    )
    .await;
    assert_eq!(expires_in, 1800);
}

#[tokio::test]
async fn wif_assertion_claims_must_match_the_configuration() {
    let (s, _jwks) = wif_setup().await;
    let base = assertion_claims(T0, 3600);
    let cases = [
        (
            "sub",
            json!("99999999-3333-4444-5555-666677778888"),
            "assertion subject not accepted",
        ),
        (
            "iss",
            json!("https://login.microsoftonline.com/other/v2.0"),
            "assertion issuer not accepted",
        ),
        (
            "aud",
            json!("api://someone-else"),
            "assertion audience not accepted",
        ),
        (
            "tid",
            json!("00000000-0000-1111-2222-ffffffffffff"),
            "assertion tenant not accepted",
        ),
        ("exp", json!(unix(T0) - 120), "assertion expired"),
        ("exp", json!(unix(T0)), "assertion expired"),
        ("nbf", json!(unix(T0) + 600), "assertion not yet valid"),
    ];
    for (claim, value, expected) in cases {
        let assertion = sign(KEY1_PEM, "test-key-1", &with(base.clone(), claim, value));
        let body = expect_error(
            client_assertion(&s, &assertion).await,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        )
        .await;
        assert_eq!(body["error_description"], expected, "{claim}");
    }
    // Signed by a key outside the configured JWKS.
    let foreign = sign(KEY2_PEM, "test-key-1", &base);
    let body = expect_error(
        client_assertion(&s, &foreign).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert_eq!(body["error_description"], "assertion signature invalid");
    // HS256 with the public key.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("test-key-1".into());
    let confused =
        jsonwebtoken::encode(&hs, &base, &EncodingKey::from_secret(KEY1_PUBLIC_PEM)).unwrap();
    let body = expect_error(
        client_assertion(&s, &confused).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert_eq!(body["error_description"], "assertion algorithm not allowed");
    // An unknown client id; a wrong assertion type.
    let good = sign(KEY1_PEM, "test-key-1", &base);
    expect_error(
        s.token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "someone-else"),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", &good),
            ],
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    expect_error(
        s.token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "scim-wif"),
                ("client_assertion_type", "urn:example:saml"),
                ("client_assertion", &good),
            ],
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    // The §2.1 grant answers a bad assertion with invalid_grant.
    let bad = sign(
        KEY1_PEM,
        "test-key-1",
        &with(base.clone(), "aud", json!("api://x")),
    );
    expect_error(
        s.token(
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &bad),
            ],
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert!(s.store.all().is_empty());
    // The good one still works.
    expect_token(client_assertion(&s, &good).await).await;
}

#[test]
fn auth_config_from_toml_builds_a_service() {
    let text = format!(
        r#"
        [entra_jwt]
        tenants = {{ "{ENTRA_TENANT_A}" = "tenant-a" }}
        leeway_seconds = 30

        [[oauth_clients]]
        client_id = "entra-prod"
        tenant = "tenant-a"
        secrets = [{{ sha256 = "{}" }}]
        "#,
        hash_secret(SECRET_1)
    );
    let config: AuthConfig = toml::from_str(&text).unwrap();
    let tenants: BTreeMap<String, String> =
        BTreeMap::from([(ENTRA_TENANT_A.to_owned(), "tenant-a".to_owned())]);
    assert_eq!(config.entra_jwt.as_ref().unwrap().tenants, tenants);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        AuthService::from_config(
            &config,
            Arc::new(MemTokens::default()),
            Arc::new(ManualClock::new(T0)),
        )
        .unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// Dependencies down: 503, not 401 (a 401 makes Entra quarantine a healthy credential)

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

#[tokio::test]
async fn store_or_jwks_down_answers_503_and_the_token_endpoint_500() {
    let mut entra = EntraJwtConfig::new(ENTRA_TENANT_A, "tenant-a");
    entra.jwks_url = closed_port_url().await;
    let mut config = oauth_config();
    config.entra_jwt = Some(entra);
    let auth = AuthService::from_config(
        &config,
        Arc::new(BrokenTokens),
        Arc::new(ManualClock::new(T0)),
    )
    .unwrap();
    let base = serve_app(auth).await;
    let http = reqwest::Client::new();

    let jwt = sign(KEY1_PEM, "test-key-1", &entra_claims(T0));
    for token in ["scim_some-static-token", jwt.as_str()] {
        let resp = http
            .get(format!("{base}/scim/v2/whoami"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "30");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "503");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .starts_with("authentication temporarily unavailable")
        );
    }

    // Issuing needs the store: a generic server_error, nothing about the cause.
    let resp = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "entra-prod"),
            ("client_secret", SECRET_1),
        ])
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, StatusCode::INTERNAL_SERVER_ERROR, "server_error").await;
    assert!(!body.to_string().contains("store down"));
}

#[tokio::test]
async fn assertion_with_unreachable_jwks_is_temporarily_unavailable() {
    let config = AuthConfig {
        federated: vec![FederatedClientConfig {
            client_id: "scim-wif".into(),
            tenant: "tenant-w".into(),
            issuer: wif_issuer(),
            subject: WIF_SUBJECT.into(),
            audience: WIF_AUDIENCE.into(),
            entra_tenant_id: Some(WIF_TID.into()),
            jwks_url: closed_port_url().await,
            token_lifetime_seconds: 3600,
            leeway_seconds: 60,
            read_only: false,
        }],
        ..AuthConfig::default()
    };
    let s = oauth_setup(config).await;
    let assertion = sign(KEY1_PEM, "test-key-1", &assertion_claims(T0, 3600));
    expect_error(
        client_assertion(&s, &assertion).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    )
    .await;
}

#[tokio::test]
async fn a_new_client_secret_from_the_helper_obtains_tokens() {
    let (secret, hash) = scim_server::auth::oauth::new_client_secret();
    assert_eq!(hash, hash_secret(secret.expose()));
    let mut config = oauth_config();
    config.oauth_clients[0].secrets = vec![ClientSecretConfig::from_hash(hash)];
    let s = oauth_setup(config).await;
    expect_token(
        s.token(
            &[("grant_type", "client_credentials")],
            Some(("entra-prod", secret.expose())),
        )
        .await,
    )
    .await;
}
