//! `POST /oauth/token` over real HTTP: client credentials with a secret.

use super::*;

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
    let (token, _) = expect_token(s.basic_token("entra-prod", SECRET_1).await).await;
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
    expect_token(s.basic_token("entra-prod", SECRET_2).await).await;
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
    let resp = s.basic_token("entra-prod", "wrong-secret").await;
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // A secret of another client.
    expect_error(
        s.basic_token("long-lived", SECRET_2).await,
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
    let (token, expires_in) = expect_token(s.basic_token("long-lived", SECRET_1).await).await;
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

#[tokio::test]
async fn issued_access_tokens_are_listed_apart_and_revocable() {
    let s = oauth_setup(oauth_config()).await;
    let (static_record, _) = create_token(&*s.store, "tenant-a", "static", false, T0)
        .await
        .unwrap();
    let (token, _) = expect_token(s.basic_token("entra-prod", SECRET_1).await).await;
    let statics = list_tokens(&*s.store, Some("tenant-a")).await.unwrap();
    assert_eq!(statics, vec![static_record]);
    let issued = list_access_tokens(&*s.store, Some("tenant-a"), s.clock.now())
        .await
        .unwrap();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].label, "entra-prod");
    assert_eq!(
        scim_server::auth::token_kind(&issued[0]),
        CredentialKind::OAuthAccessToken
    );

    // Revoked: refused once the verified-token cache lifetime (the revocation bound) has
    // passed, and no longer listed.
    assert!(
        revoke_token(&*s.store, &issued[0].id, s.clock.now())
            .await
            .unwrap()
    );
    s.clock.advance(time::Duration::seconds(
        scim_server::auth::DEFAULT_TOKEN_CACHE_SECONDS as i64,
    ));
    let (status, body) = s.whoami(&token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "token is revoked");
    assert!(
        list_access_tokens(&*s.store, None, s.clock.now())
            .await
            .unwrap()
            .is_empty()
    );
}
