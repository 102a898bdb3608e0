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

/// Creates the user `user_name` (its id the same) in `tenant` through `store`, as the write
/// pipeline would, with a fixed timestamp: for tests that need writes, not their content.
pub async fn create_user(
    store: &(impl crate::store::Resources + ?Sized),
    tenant: &str,
    user_name: &str,
) -> crate::store::Result<()> {
    use scim_core::change::Change;
    use scim_core::resource::{Meta, Resource};
    use scim_core::schema::SchemaRegistry;
    let registry = SchemaRegistry::builtin();
    let at = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("a valid instant");
    let mut attributes = serde_json::Map::new();
    attributes.insert("userName".into(), user_name.into());
    let user = Resource::new("User", user_name, attributes, Meta::new(at));
    let ctx = request_ctx(
        principal(tenant, "token:test", false, CredentialKind::StaticToken),
        None,
        "http://localhost/scim/v2",
    )
    .writer()
    .expect("a read-write principal")
    .context(at);
    let users = registry
        .resource_type("User")
        .expect("the built-in User type");
    store
        .create(&ctx, users, &user, &Change::created(&registry, &user))
        .await
}
