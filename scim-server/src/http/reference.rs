//! `/docs`: the interactive API reference. Swagger UI (vendored from the npm package
//! `swagger-ui-dist`, see `assets/swagger-ui/README.md`) is embedded in the binary and reads
//! `/openapi.json`; nothing is loaded from elsewhere, so the page works offline. The bearer token
//! is typed into the page's "Authorize" dialog (the document's `bearer` security scheme) and used
//! for "Try it out" requests to this same server.

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header;

/// The vendored Swagger UI release; part of the asset paths, so a new release is a new URL and
/// the assets can be cached for a year.
pub const SWAGGER_UI_VERSION: &str = "5.35.0";

const BUNDLE_JS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");
const INIT_JS: &[u8] = include_bytes!("../../assets/docs.js");

/// Scripts and styles only from this server; Swagger UI sets inline styles and shows `data:`
/// images, and calls only this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// The `/docs` page and its assets (stateless; merged into the server's router).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let asset = |path: &str| format!("/docs/assets/{SWAGGER_UI_VERSION}/{path}");
    Router::new()
        .route("/docs", get(page))
        .route(&asset("swagger-ui-bundle.js"), get(bundle_js))
        .route(&asset("swagger-ui.css"), get(css))
        .route(&asset("docs.js"), get(init_js))
}

async fn page() -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>scim-server API reference</title>\
         <link rel=\"stylesheet\" href=\"docs/assets/{v}/swagger-ui.css\"></head>\
         <body><noscript>The interactive reference needs JavaScript; the OpenAPI document is at \
         <a href=\"openapi.json\">/openapi.json</a>.</noscript>\
         <div id=\"swagger-ui\"></div>\
         <script src=\"docs/assets/{v}/swagger-ui-bundle.js\"></script>\
         <script src=\"docs/assets/{v}/docs.js\"></script></body></html>\n",
        v = SWAGGER_UI_VERSION
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        html,
    )
        .into_response()
}

fn asset(content_type: &'static str, body: &'static [u8], immutable: bool) -> Response {
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        // Our own starter script changes with the binary, not with the Swagger UI release.
        "public, max-age=300"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn bundle_js() -> Response {
    asset("text/javascript; charset=utf-8", BUNDLE_JS, true)
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS, true)
}

async fn init_js() -> Response {
    asset("text/javascript; charset=utf-8", INIT_JS, false)
}
