//! An axum middleware that authenticates every request of the routes it wraps.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::Authenticator;

/// Authenticates the request and stores its [`Principal`](super::Principal) in the request
/// extensions (handlers take `Extension<Principal>`); otherwise answers with
/// [`AuthError::to_response`](super::AuthError::to_response) (401 with `WWW-Authenticate: Bearer`
/// and a SCIM error body, or 503 when the credential could not be checked).
///
/// ```no_run
/// # use std::sync::Arc;
/// # use axum::{Router, routing::get, middleware::from_fn_with_state};
/// # use scim_server::auth::{Authenticator, middleware::require_principal};
/// # fn f(authenticator: Arc<dyn Authenticator>) {
/// let scim: Router = Router::new()
///     .route("/scim/v2/Users", get(|| async { "…" }))
///     .route_layer(from_fn_with_state(authenticator, require_principal));
/// # }
/// ```
pub async fn require_principal(
    State(auth): State<Arc<dyn Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    match auth.authenticate(request.headers()).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(err) => {
            let mut response = err.to_response();
            super::challenge_basic_too(auth.as_ref(), &mut response).await;
            response
        }
    }
}
