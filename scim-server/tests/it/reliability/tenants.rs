//! Issue 13 defect 4: a credential naming a tenant that does not exist stops the server at
//! start-up (naming the key), gets no token at `/oauth/token` when the tenant goes missing later,
//! and `audit verify` checks the change records of every tenant id, existing or not.

use super::*;
use serde_json::json;

const CLIENT_SECRET: &str = "ghost-client-secret-0123456789abcdef";

fn config_with_client(dir: &tempfile::TempDir, tenant: &str) -> String {
    let hash = scim_server::auth::secret::hash_secret(CLIENT_SECRET);
    let path = dir.path().join(format!("{tenant}.toml"));
    std::fs::write(
        &path,
        format!(
            "[[auth.oauth_clients]]\nclient_id = \"c-{tenant}\"\ntenant = \"{tenant}\"\n\
             secrets = [{{ sha256 = \"{hash}\" }}]\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_must_name_existing_tenants_and_audit_covers_every_tenant() {
    let dir = tempfile::tempdir().unwrap();
    for (db, url, _pg) in databases(&dir).await {
        let launch = Launch::new(&url);
        // Start-up refuses a client of tenant "ghost" and names the key.
        let ghost = launch
            .clone()
            .env("SCIM_CONFIG", &config_with_client(&dir, "ghost"));
        let (ok, out) = ghost.run(&["serve"]);
        assert!(!ok, "{db}: served with a ghost tenant: {out}");
        assert!(
            out.contains("auth.oauth_clients[0].tenant") && out.contains("\"ghost\""),
            "{db}: {out}"
        );

        // A client of an existing tenant gets tokens until the tenant is gone.
        let (ok, out) = launch.run(&["tenant", "create", "acme"]);
        assert!(ok, "{db}: {out}");
        let s = launch
            .clone()
            .env("SCIM_CONFIG", &config_with_client(&dir, "acme"))
            .start();
        let token = |s: &Proc| {
            let req = s.client.post(format!("{}/oauth/token", s.root)).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "c-acme"),
                ("client_secret", CLIENT_SECRET),
            ]);
            async move { req.send().await.unwrap() }
        };
        assert_eq!(token(&s).await.status(), StatusCode::OK, "{db}");
        let store = scim_server::store::open_store(&url).await.unwrap();
        match db.as_str() {
            "sqlite" => {
                let sqlite = scim_server::store::SqliteStore::open(&url).await.unwrap();
                sqlx::query("DELETE FROM tenants WHERE id = 'acme'")
                    .execute(sqlite.pool())
                    .await
                    .unwrap();
            }
            _ => {
                let pg = scim_server::store::PostgresStore::connect(&url)
                    .await
                    .unwrap();
                sqlx::query("DELETE FROM tenants WHERE id = 'acme'")
                    .execute(pg.pool())
                    .await
                    .unwrap();
            }
        }
        let refused = token(&s).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{db}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{db}: {body}");
        assert_eq!(
            body["error_description"], "the client's tenant does not exist",
            "{db}"
        );
        drop(s);

        // Records of a tenant with no row (written before this check existed) are audited.
        let registry = scim_core::schema::SchemaRegistry::builtin();
        let rt = registry.resource_type("User").unwrap();
        let now = time::OffsetDateTime::now_utc();
        let request = scim_server::test_support::request_ctx(
            scim_server::test_support::principal(
                "ghost",
                "old-client",
                false,
                scim_server::auth::CredentialKind::OAuthAccessToken,
            ),
            None,
            "http://localhost/scim/v2",
        );
        let ctx = request.writer().unwrap().context(now);
        let attrs = json!({"userName": "haunted"}).as_object().cloned().unwrap();
        let resource = scim_core::resource::Resource::new(
            "User",
            uuid::Uuid::new_v4().to_string(),
            attrs,
            scim_core::resource::Meta::new(now),
        );
        let change = scim_core::change::Change::created(&registry, &resource);
        store.create(&ctx, rt, &resource, &change).await.unwrap();
        let (ok, out) = launch.run(&["audit", "verify"]);
        assert!(ok, "{db}: {out}");
        assert!(
            out.contains("tenant \"ghost\": 1 records, chain intact"),
            "{db}: {out}"
        );
        // An altered ghost record fails the audit.
        let tamper = "UPDATE scim_changes SET principal = 'someone-else' WHERE tenant_id = 'ghost'";
        match db.as_str() {
            "sqlite" => {
                let sqlite = scim_server::store::SqliteStore::open(&url).await.unwrap();
                sqlx::query(tamper).execute(sqlite.pool()).await.unwrap();
            }
            _ => {
                let pg = scim_server::store::PostgresStore::connect(&url)
                    .await
                    .unwrap();
                sqlx::query(tamper).execute(pg.pool()).await.unwrap();
            }
        }
        let (ok, out) = launch.run(&["audit", "verify"]);
        assert!(!ok, "{db}: the altered ghost record passed: {out}");
    }
}

/// Issued access tokens do not pile up: those expired before the cut-off are purged, along with
/// assertion `jti`s past their expiry; static tokens (no expiry) and live ones stay.
#[tokio::test]
async fn expired_access_tokens_and_jtis_are_purged() {
    for db in [
        super::super::support::TestDb::sqlite().await,
        super::super::support::TestDb::postgres().await,
    ] {
        let store = db.store.clone();
        let now = time::OffsetDateTime::now_utc();
        let token =
            |id: &str, expires: Option<time::OffsetDateTime>| scim_server::store::TokenRecord {
                id: id.into(),
                tenant: "default".into(),
                secret_hash: format!("{id:0>64}"),
                label: "t".into(),
                read_only: false,
                created: now - time::Duration::days(2),
                expires,
                revoked: None,
            };
        store.insert_token(&token("static", None)).await.unwrap();
        store
            .insert_token(&token("expired", Some(now - time::Duration::hours(3))))
            .await
            .unwrap();
        store
            .insert_token(&token("live", Some(now + time::Duration::hours(1))))
            .await
            .unwrap();
        assert!(
            store
                .claim_assertion_jti("iss", "old", now - time::Duration::hours(2))
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_assertion_jti("iss", "new", now + time::Duration::hours(2))
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_assertion_jti("iss", "new", now + time::Duration::hours(2))
                .await
                .unwrap()
        );
        let purged = store
            .purge_expired(now - time::Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(purged, 1);
        let mut left: Vec<String> = store
            .list_tokens(None)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        left.sort();
        assert_eq!(left, ["live", "static"]);
        // The expired jti is gone (claimable again); the live one is still remembered.
        assert!(store.claim_assertion_jti("iss", "old", now).await.unwrap());
        assert!(!store.claim_assertion_jti("iss", "new", now).await.unwrap());
        db.cleanup().await;
    }
}
