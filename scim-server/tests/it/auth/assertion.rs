//! `POST /oauth/token` over real HTTP: RFC 7523 assertions (workload identity federation).

use super::*;

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

/// RFC 7523 §3 item 7: an assertion's `jti` is remembered (in the store, so every replica sees
/// it) until the assertion expires; a second use is refused. Another `jti` is accepted.
#[tokio::test]
async fn a_replayed_assertion_jti_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn scim_server::store::Store> = Arc::new(
        scim_server::store::SqliteStore::open(dir.path().join("scim.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    store
        .create_tenant(&scim_server::store::Tenant {
            id: "tenant-w".into(),
            name: "tenant-w".into(),
            bulk_upsert_by_external_id: false,
            created: T0,
        })
        .await
        .unwrap();
    let jwks = JwksServer::start(vec![jwk(KEY1_JWK)]).await;
    let config = AuthConfig {
        federated: vec![wif_client(jwks.url.clone())],
        ..AuthConfig::default()
    };
    let clock = Arc::new(ManualClock::new(T0));
    let auth = AuthService::from_config(
        &config,
        scim_server::auth::token_store(store.clone()),
        clock.clone(),
    )
    .unwrap();
    let s = OAuthSetup {
        base: serve_app(auth).await,
        clock,
        store: Arc::new(MemTokens::default()),
        http: reqwest::Client::new(),
    };
    let assertion = sign(KEY1_PEM, "test-key-1", &assertion_claims(T0, 600));
    expect_token(client_assertion(&s, &assertion).await).await;
    let body = expect_error(
        client_assertion(&s, &assertion).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        body["error_description"],
        "assertion already used (jti replay)"
    );
    let other = sign(
        KEY1_PEM,
        "test-key-1",
        &with(assertion_claims(T0, 600), "jti", json!("a-fresh-jti")),
    );
    expect_token(client_assertion(&s, &other).await).await;
}
