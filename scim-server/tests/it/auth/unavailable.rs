//! Dependencies down: 503, not 401 (a 401 makes Entra quarantine a healthy credential).

use super::*;

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
        federated: vec![wif_client(closed_port_url().await)],
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
    expect_token(s.basic_token("entra-prod", secret.expose()).await).await;
}
