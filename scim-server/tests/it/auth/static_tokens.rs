//! Static tokens and the `SCIM_TOKEN` environment token; the 401 a client meets over HTTP.

use super::*;

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

/// A verified token is trusted for the cache lifetime without a lookup; a revocation made behind
/// the cache's back (another replica, the CLI) applies once that lifetime has passed, and expiry
/// is judged on every use. Unknown secrets are looked up every time.
#[tokio::test]
async fn verified_tokens_are_cached_for_the_revocation_bound() {
    let store = Arc::new(MemTokens::default());
    let clock = Arc::new(ManualClock::new(T0));
    let auth = StaticTokens::new(store.clone(), clock.clone())
        .cache_verified_for(std::time::Duration::from_secs(5));
    let (record, secret) = create_token(&*store, "acme", "okta", false, T0)
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(auth.verify(secret.expose()).await.is_ok());
    }
    assert_eq!(store.lookups(), 1, "verified once, then served from memory");

    assert!(revoke_token(&*store, &record.id, T0).await.unwrap());
    clock.advance(time::Duration::seconds(4));
    assert!(
        auth.verify(secret.expose()).await.is_ok(),
        "within the bound"
    );
    clock.advance(time::Duration::seconds(1));
    assert_eq!(auth.verify(secret.expose()).await, err("token is revoked"));
    assert_eq!(auth.verify(secret.expose()).await, err("token is revoked"));
    assert_eq!(store.lookups(), 3, "a revoked record is never cached");

    for _ in 0..2 {
        assert_eq!(
            auth.verify("scim_unknown-secret").await,
            err("invalid bearer token")
        );
    }
    assert_eq!(store.lookups(), 5, "unknown secrets are not cached");

    // An expiring record stays cached but stops working at its expiry.
    let expiring = TokenRecord {
        id: "oat_expiring".into(),
        tenant: "acme".into(),
        secret_hash: hash_secret("scimat_expiring-secret"),
        label: "client".into(),
        read_only: false,
        created: clock.now(),
        expires: Some(clock.now() + time::Duration::seconds(2)),
        revoked: None,
    };
    store.insert_token(&expiring).await.unwrap();
    assert!(auth.verify("scimat_expiring-secret").await.is_ok());
    clock.advance(time::Duration::seconds(2));
    assert_eq!(
        auth.verify("scimat_expiring-secret").await,
        err("token expired")
    );

    // Lifetime zero: every request reads the store.
    let uncached = StaticTokens::new(store.clone(), clock.clone())
        .cache_verified_for(std::time::Duration::ZERO);
    let (_, fresh) = create_token(&*store, "acme", "fresh", false, clock.now())
        .await
        .unwrap();
    let before = store.lookups();
    for _ in 0..3 {
        assert!(uncached.verify(fresh.expose()).await.is_ok());
    }
    assert_eq!(store.lookups(), before + 3);
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
        auth.verify(a_secret.expose()).await.unwrap().tenant(),
        "tenant-a"
    );
    assert_eq!(
        auth.verify(b_secret.expose()).await.unwrap().tenant(),
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

#[tokio::test]
async fn a_jwt_shaped_scim_token_still_works_with_entra_mode_on() {
    let mut entra = EntraJwtConfig::new(ENTRA_TENANT_A, "tenant-a");
    entra.jwks_url = "http://127.0.0.1:9/never-fetched".into();
    let config = AuthConfig {
        entra_jwt: Some(entra),
        ..AuthConfig::default()
    };
    let env_secret = "ci-part-one.ci-part-two.ci-part-three";
    let auth = AuthService::from_config(
        &config,
        Arc::new(MemTokens::default()),
        Arc::new(ManualClock::new(T0)),
    )
    .unwrap()
    .with_env_token("default", env_secret);
    assert_eq!(
        auth.authenticate(&bearer(&format!("Bearer {env_secret}")))
            .await
            .map(|p| p.tenant().to_string()),
        Ok("default".to_owned())
    );
}

#[tokio::test]
async fn the_middleware_puts_the_principal_into_extensions() {
    use axum::Extension;
    use axum::middleware::from_fn_with_state;
    use scim_server::auth::middleware::require_principal;

    let store = Arc::new(MemTokens::default());
    let (_, secret) = create_token(&*store, "acme", "l", false, T0).await.unwrap();
    let authenticator: Arc<dyn Authenticator> =
        Arc::new(StaticTokens::new(store, Arc::new(ManualClock::new(T0))));
    let app = Router::new()
        .route(
            "/scim/v2/Users",
            get(|Extension(p): Extension<Principal>| async move { p.tenant().to_string() }),
        )
        .route_layer(from_fn_with_state(authenticator, require_principal));
    let base = format!("http://{}", serve(app).await);
    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{base}/scim/v2/Users"))
        .bearer_auth(secret.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "acme");
    let resp = http
        .get(format!("{base}/scim/v2/Users"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
}

/// RFC 7235 §4.1: a 401 may carry several challenges. `Bearer` always; `Basic` (RFC 7617 §2,
/// with its required realm) as a second field once some tenant has a live Basic credential,
/// noticed within `BASIC_PRESENCE_TTL` on the injected clock and dropped once it is revoked.
#[tokio::test]
async fn a_401_offers_basic_too_while_basic_credentials_exist() {
    use axum::middleware::from_fn_with_state;
    use scim_server::auth::basic::create_basic_credential;
    use scim_server::auth::chain::BASIC_PRESENCE_TTL;
    use scim_server::auth::middleware::require_principal;

    let store = Arc::new(MemTokens::default());
    let clock = Arc::new(ManualClock::new(T0));
    let auth =
        AuthService::from_config(&AuthConfig::default(), store.clone(), clock.clone()).unwrap();
    let authenticator: Arc<dyn Authenticator> = Arc::new(auth);
    let app = Router::new()
        .route("/scim/v2/Users", get(|| async { "never" }))
        .route_layer(from_fn_with_state(authenticator, require_principal));
    let base = format!("http://{}", serve(app).await);
    let http = reqwest::Client::new();
    let challenges = || async {
        let resp = http
            .get(format!("{base}/scim/v2/Users"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        resp.headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(challenges().await, ["Bearer"], "no Basic credential yet");

    let (record, _) = create_basic_credential(&*store, "acme", "okta", false, T0)
        .await
        .unwrap();
    assert_eq!(challenges().await, ["Bearer"], "the cached answer holds");
    clock.advance(BASIC_PRESENCE_TTL + std::time::Duration::from_secs(1));
    let both = [
        "Bearer".to_string(),
        "Basic realm=\"scim-server\", charset=\"UTF-8\"".to_string(),
    ];
    assert_eq!(challenges().await, both);

    store.revoke_token(&record.id, T0).await.unwrap();
    clock.advance(BASIC_PRESENCE_TTL + std::time::Duration::from_secs(1));
    assert_eq!(
        challenges().await,
        ["Bearer"],
        "revoked: Bearer alone again"
    );
}
