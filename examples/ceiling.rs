//! The ceiling of the benchmarks: the smallest axum endpoint that answers like a SCIM server.
//!
//! Any `GET` returns the same SCIM user (a list response when the query carries a `filter`,
//! so that match requests see one result); `POST` returns it with `201 Created`; `PATCH` and
//! `PUT` with `200`; `DELETE` with `204`. No storage, no parsing, no authentication: whatever
//! a real server does on top of this costs throughput, and `scripts/bench.sh` reports our
//! figures as a share of this one, measured on the same machine with the same generator.
//!
//! ```text
//! CEILING_LISTEN=127.0.0.1:8099 cargo run --release -p scim-examples --example ceiling
//! ```

use axum::Router;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// The fixed user every request gets.
const USER: &str = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"2819c223-7f76-453a-919d-413861904646","externalId":"bjensen","userName":"bjensen@example.com","name":{"formatted":"Ms. Barbara J Jensen III","familyName":"Jensen","givenName":"Barbara"},"active":true,"emails":[{"value":"bjensen@example.com","type":"work","primary":true}],"meta":{"resourceType":"User","created":"2026-01-01T00:00:00Z","lastModified":"2026-01-01T00:00:00Z","location":"http://127.0.0.1/scim/v2/Users/2819c223-7f76-453a-919d-413861904646","version":"W/\"1\""}}"#;

/// The same user inside a list response.
fn list() -> String {
    format!(
        r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"startIndex":1,"itemsPerPage":1,"Resources":[{USER}]}}"#
    )
}

async fn any(method: Method, uri: Uri) -> Response {
    let json = [(header::CONTENT_TYPE, "application/scim+json")];
    match method {
        Method::GET if uri.path() == "/healthz" => "ok".into_response(),
        Method::GET if uri.query().is_some_and(|q| q.contains("filter=")) => {
            (json, list()).into_response()
        }
        Method::GET => (json, USER).into_response(),
        Method::POST => (StatusCode::CREATED, json, USER).into_response(),
        Method::DELETE => StatusCode::NO_CONTENT.into_response(),
        _ => (json, USER).into_response(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::var("CEILING_LISTEN").unwrap_or_else(|_| "127.0.0.1:8099".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("ceiling listening on http://{}", listener.local_addr()?);
    let app = Router::new().fallback(any);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
