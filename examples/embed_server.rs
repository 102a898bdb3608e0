//! Embedding `scim-server` in your own axum application, with a custom schema extension.
//!
//! The SCIM router is an ordinary `axum::Router` merged with the application's own routes; the
//! store and the authenticator are the library's. A custom extension (an Acme badge number) is
//! registered from a JSON schema document, as `/Schemas` serves it, and attached to `User`.
//!
//! `cargo run -p scim-examples --example embed_server` starts it on an ephemeral port, sends one
//! SCIM create over a real socket, prints the answer and exits; add `-- --serve` to keep serving
//! on 127.0.0.1:8080.

use anyhow::Context;
use scim_core::schema::{Schema, SchemaRegistry};
use scim_server::auth::{AuthConfig, AuthService, SystemClock, token_store};
use scim_server::config::Config;
use scim_server::state::AppState;
use serde_json::json;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";
const TOKEN: &str = "example-token-0123456789abcdef";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let serve = std::env::args().any(|a| a == "--serve");
    let dir = tempfile_dir()?;
    let mut config = Config::load(None).context("configuration")?;
    config.database_url = format!("sqlite://{}", dir.join("embedded.db").display());

    let store = scim_server::store::open_store(&config.database_url).await?;
    store.migrate().await?;
    scim_server::server::ensure_tenant(store.as_ref(), "default", &SystemClock).await?;

    let auth = AuthService::from_config(
        &AuthConfig::default(),
        token_store(store.clone()),
        Arc::new(SystemClock),
    )?
    .with_env_token("default", TOKEN);
    let oauth = auth.oauth_server();

    // A custom extension, loaded the way a deployment would load it from a file.
    let mut registry = SchemaRegistry::builtin();
    registry.add_schema(Schema::from_json(&json!({
        "id": ACME,
        "name": "AcmeUser",
        "description": "Acme's own user attributes",
        "attributes": [
            {"name": "badgeNumber", "type": "integer", "multiValued": false, "required": false},
            {"name": "site", "type": "string", "multiValued": false, "required": false}
        ]
    }))?);
    registry.extend_resource_type("User", ACME, false)?;

    let state = AppState::new(&config, store, Arc::new(auth))
        .with_registry(registry)
        .with_oauth(oauth);
    let app = scim_server::http::router(state).route(
        "/hello",
        axum::routing::get(|| async { "the application's own route\n" }),
    );

    let addr = if serve {
        "127.0.0.1:8080"
    } else {
        "127.0.0.1:0"
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    println!("SCIM base: http://{bound}/scim/v2 (Authorization: Bearer {TOKEN})");
    if serve {
        axum::serve(listener, app).await?;
        return Ok(());
    }
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The badge number arrives as a string, as HR feeds send numbers; the schema types it.
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ACME],
        "userName": "alice@acme.example",
        ACME: {"badgeNumber": "4711", "site": "Berlin"}
    })
    .to_string();
    let answer = http_request(bound, "POST", "/scim/v2/Users", &body).await?;
    println!("{answer}");
    anyhow::ensure!(
        answer.starts_with("HTTP/1.1 201"),
        "the create should answer 201"
    );
    anyhow::ensure!(
        answer.contains("\"badgeNumber\":4711"),
        "badgeNumber is typed as an integer"
    );
    Ok(())
}

/// One HTTP/1.1 exchange over a plain socket, so the example needs no HTTP client crate.
async fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

/// A fresh directory for the example's database.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("scim-embed-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
