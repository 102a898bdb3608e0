//! For tests only (feature `test-support`, which this crate's integration tests turn on as a
//! dev-dependency): builds the capability handles that authentication makes otherwise, so a test
//! can call a service function or compare an authenticator's answer without going through HTTP.
//! Production code never enables the feature; an embedder's tests may
//! (`scim-server = { …, features = ["test-support"] }` under `[dev-dependencies]`).

use crate::auth::{CredentialKind, Principal};
use crate::service::RequestCtx;

/// A principal as an authenticator would return it.
pub fn principal(
    tenant: impl Into<String>,
    id: impl Into<String>,
    read_only: bool,
    kind: CredentialKind,
) -> Principal {
    Principal::new(tenant, id, read_only, kind)
}

/// The request context of `principal`, as the HTTP layer makes it after authentication.
pub fn request_ctx(
    principal: Principal,
    request_id: Option<String>,
    base_url: impl Into<String>,
) -> RequestCtx {
    RequestCtx::new(principal, request_id, base_url)
}
