//! The console's static files, embedded in the binary and served under content-hashed names
//! (`/console/assets/console.1a2b3c4d5e6f.css`) with a one-year immutable cache lifetime: a new
//! build changes the name, so a browser never runs a stale script against a new page.
//!
//! `htmx` (Zero-Clause BSD, `assets/htmx-LICENSE.txt`) is vendored from the npm package
//! `htmx.org` 2.0.11, unmodified.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The logical name (`console.css`).
    pub logical: &'static str,
    /// The served, content-hashed name.
    pub hashed: String,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The bytes.
    pub bytes: &'static [u8],
}

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/console.css"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/htmx-2.0.11.min.js"),
    ),
    (
        "htmx-LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!("assets/htmx-LICENSE.txt"),
    ),
];

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(logical, content_type, bytes)| {
            let digest = hex::encode(&Sha256::digest(bytes)[..6]);
            let hashed = match logical.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem}.{digest}.{ext}"),
                None => format!("{logical}.{digest}"),
            };
            Asset {
                logical,
                hashed,
                content_type,
                bytes,
            }
        })
        .collect()
});

/// The URL path of an embedded file by its logical name.
pub fn url(logical: &str) -> String {
    let hashed = ASSETS
        .iter()
        .find(|a| a.logical == logical)
        .map_or(logical, |a| a.hashed.as_str());
    format!("/console/assets/{hashed}")
}

/// `GET /console/assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.hashed == name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            asset.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash() {
        let css = url("console.css");
        assert!(css.starts_with("/console/assets/console."), "{css}");
        assert!(css.ends_with(".css"));
        assert_eq!(css.len(), "/console/assets/console..css".len() + 12);
    }
}
