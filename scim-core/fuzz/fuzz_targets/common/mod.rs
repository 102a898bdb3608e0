//! The fixture the PATCH targets share: the builtin schemas, one User and one Group.

use scim_core::resource::{Meta, Resource};
use scim_core::schema::SchemaRegistry;
use serde_json::Value;

pub struct Fixture {
    pub registry: SchemaRegistry,
    pub user: Resource,
    pub group: Resource,
}

impl Fixture {
    /// The builtin schemas, a User `u-1` with the attributes `user` and a Group `g-1` with the
    /// attributes `group`, both created at the epoch.
    pub fn new(user: Value, group: Value) -> Self {
        // The epoch, without a direct dependency on the `time` crate.
        let epoch =
            scim_core::resource::parse_datetime("1970-01-01T00:00:00Z").expect("a valid dateTime");
        let resource = |rt: &str, id: &str, v: Value| {
            Resource::new(
                rt,
                id,
                v.as_object().cloned().unwrap_or_default(),
                Meta::new(epoch),
            )
        };
        Fixture {
            registry: SchemaRegistry::builtin(),
            user: resource("User", "u-1", user),
            group: resource("Group", "g-1", group),
        }
    }
}
