//! Entra-issued JWTs ("blank secret token"), with a JWKS served over real HTTP.

use super::*;

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

/// A verified JWT is reused for the cache lifetime, but never past its `exp` plus leeway: the
/// cache accepts nothing a fresh check would refuse, however long its lifetime.
#[tokio::test]
async fn verified_jwts_are_cached_but_never_past_their_expiry() {
    let jwks = JwksServer::start(vec![jwk(KEY1_JWK)]).await;
    let clock = Arc::new(ManualClock::new(T0));
    let mut entra = EntraJwtConfig::new(ENTRA_TENANT_A, "tenant-a");
    entra.jwks_url = jwks.url.clone();
    let leeway = entra.leeway_seconds as i64;
    let config = AuthConfig {
        entra_jwt: Some(entra),
        token_cache_seconds: 3600,
        ..AuthConfig::default()
    };
    let auth =
        AuthService::from_config(&config, Arc::new(MemTokens::default()), clock.clone()).unwrap();
    let token = sign(
        KEY1_PEM,
        "test-key-1",
        &with(entra_claims(T0), "exp", json!(unix(T0) + 10)),
    );
    assert!(auth.verify_token(&token).await.is_ok());
    assert_eq!(auth.cached_credentials(), 1);
    assert!(auth.verify_token(&token).await.is_ok());
    assert_eq!(auth.cached_credentials(), 1, "served from the cache");
    clock.advance(time::Duration::seconds(10 + leeway));
    assert!(
        auth.verify_token(&token).await.is_ok(),
        "exp + leeway is still accepted"
    );
    clock.advance(time::Duration::seconds(1));
    assert_eq!(auth.verify_token(&token).await, err("JWT expired"));
    assert_eq!(auth.verify_token(&token).await, err("JWT expired"));

    // Lifetime zero: nothing is kept.
    let uncached = AuthService::from_config(
        &AuthConfig {
            token_cache_seconds: 0,
            ..config.clone()
        },
        Arc::new(MemTokens::default()),
        clock.clone(),
    )
    .unwrap();
    let fresh = sign(KEY1_PEM, "test-key-1", &entra_claims(clock.now()));
    assert!(uncached.verify_token(&fresh).await.is_ok());
    assert_eq!(uncached.cached_credentials(), 0);
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
